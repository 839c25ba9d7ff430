//! The dashboard in headless Chromium (the miner's WebDriver helper, included by path in
//! `main.rs`): the operator fixture of `dashboard.rs` served on a real socket, every page at a
//! laptop's 1280×900 and a phone's 390×844, with no horizontal page overflow and the header on
//! screen. With `DASHBOARD_SCREENSHOT_DIR` set, a PNG of each page and size is saved there.

use serde_json::Value;
use sqlx::PgPool;
use subnet_validator::web::{self, DashboardState};
use tokio::sync::watch;

use crate::dashboard::{operator_fixture, ss58};
use crate::webdriver::Driver;

/// Width and height of each viewport, CSS pixels.
const SIZES: [(u32, u32); 2] = [(1280, 900), (390, 844)];

/// What the page says about its own layout.
const LAYOUT: &str = "
    const status = document.getElementById('status');
    const box = status ? status.getBoundingClientRect() : null;
    const style = status ? getComputedStyle(status) : null;
    return {
        innerWidth: window.innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
        bodyScrollWidth: document.body.scrollWidth,
        header: box && {
            top: box.top, bottom: box.bottom, left: box.left, right: box.right,
            width: box.width, height: box.height,
            visible: style.visibility !== 'hidden' && style.display !== 'none',
        },
        innerHeight: window.innerHeight,
        roles: Array.from(document.querySelectorAll('.role')).filter(e => e.offsetWidth > 0).length,
    };
";

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn pages_fit_a_laptop_and_a_phone_with_the_header_on_screen(pool: PgPool) {
    let status = operator_fixture(&pool).await;
    let (_sender, chain) = watch::channel(status);
    let state = DashboardState {
        pool: pool.clone(),
        netuid: 2,
        chain,
        metrics: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve_listener(listener, state, async {
        let _ = stopped.await;
    }));

    let shots = std::env::var_os("DASHBOARD_SCREENSHOT_DIR").map(std::path::PathBuf::from);
    if let Some(dir) = &shots {
        std::fs::create_dir_all(dir).expect("screenshot dir");
    }
    let driver = Driver::start().await;
    let pages = [
        ("leaderboard", "/".to_string()),
        ("weights", "/weights".to_string()),
        ("chain", "/chain".to_string()),
        ("miner", format!("/miner/{}", ss58(1))),
    ];
    for (width, height) in SIZES {
        driver.set_viewport_size(width, height, width < 800).await;
        for (name, path) in &pages {
            driver.goto(&format!("http://{addr}{path}")).await;
            driver.wait_text("#status", "permit held").await;
            let layout: Value = driver.script(LAYOUT).await;
            let at = format!("{name} at {width}×{height}: {layout}");
            let inner = layout["innerWidth"].as_u64().expect("innerWidth");
            assert_eq!(
                inner,
                u64::from(width),
                "the viewport is the asked size: {at}"
            );
            assert_eq!(layout["innerHeight"], height, "{at}");
            let scroll = layout["scrollWidth"].as_u64().expect("scrollWidth");
            assert!(scroll <= inner, "the page overflows sideways: {at}");
            let header = &layout["header"];
            assert_eq!(header["visible"], true, "{at}");
            let number = |key: &str| header[key].as_f64().expect("header box");
            assert!(number("width") > 0.0 && number("height") > 0.0, "{at}");
            assert!(number("top") >= 0.0 && number("left") >= 0.0, "{at}");
            assert!(number("right") <= f64::from(width), "{at}");
            assert!(
                number("bottom") <= layout["innerHeight"].as_f64().expect("innerHeight"),
                "the header fits the first screen: {at}"
            );
            if *name == "leaderboard" {
                assert_eq!(layout["roles"], 7, "every row's role is shown: {at}");
                let text = driver.text("#leaderboard").await;
                assert!(
                    text.contains("label miner") && text.contains("validator"),
                    "{text}"
                );
            }
            if let Some(dir) = &shots {
                let png = driver.screenshot().await;
                assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
                let file = dir.join(format!("{name}-{width}x{height}.png"));
                std::fs::write(&file, png).expect("write screenshot");
            }
        }
    }
    drop(driver);
    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
