//! One tracing subscriber per process, built in `main`.

use std::str::FromStr;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// How log lines are written.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when stderr is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format {other:?} (expected pretty or json)"
            )),
        }
    }
}

/// The project's crates (library and binary targets), whose level `--logging.debug` and
/// `--logging.trace` raise.
const OWN_TARGETS: [&str; 11] = [
    "subnet_common",
    "subnet_chain",
    "subnet_subtensor",
    "subnet_model",
    "subnet_miner",
    "subnet_validator",
    "subnet_devnet",
    "devchain",
    "miner",
    "validator",
    "devnet",
];

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`.
/// Logs go to stderr so stdout stays free for command output (`--json`, `query`).
pub fn init(format: LogFormat, default_filter: &str) {
    init_at(format, default_filter, None);
}

/// [`init`], with the project's own crates at `level` (`debug`, `trace`) when given: an explicit
/// flag, so it wins over `RUST_LOG`.
pub fn init_at(format: LogFormat, default_filter: &str, level: Option<&str>) {
    // Postgres' notices ("relation _sqlx_migrations already exists, skipping" on every start)
    // say nothing an operator can act on: only their warnings are shown.
    let quiet = "sqlx::postgres::notice=warn";
    let filter = match level {
        Some(level) => {
            let own: Vec<String> = OWN_TARGETS.iter().map(|t| format!("{t}={level}")).collect();
            EnvFilter::new(format!("{default_filter},{quiet},{}", own.join(",")))
        }
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("{default_filter},{quiet}"))),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        // Colours only on a terminal: log files and pipes get plain text.
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(true),
            )
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// A connection string fit for logs, errors and `--dump-config`: every password in it becomes
/// `***`, in each form libpq and sqlx accept:
/// - URL userinfo: `postgres://user:secret@host/db` → `postgres://user:***@host/db`;
/// - URL query parameters: `postgres://host/db?user=u&password=secret` → `…&password=***`
///   (any parameter whose name contains `password`, e.g. `sslpassword`);
/// - keyword/value strings: `host=h user=u password='se cret'` → `host=h user=u password=***`.
///
/// Anything without a password is returned unchanged. When the form is ambiguous (an `@` in a
/// query), more is hidden rather than less.
pub fn redact_url(dsn: &str) -> String {
    match dsn.find("://") {
        Some(scheme_end) => {
            let (head, rest) = dsn.split_at(scheme_end + 3);
            let (authority, tail) = match rest.rfind('@') {
                Some(at) => {
                    let (creds, tail) = rest.split_at(at);
                    let creds = match creds.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => creds.to_string(),
                    };
                    (creds, tail)
                }
                None => (String::new(), rest),
            };
            let tail = match tail.split_once('?') {
                Some((path, query)) => format!("{path}?{}", redact_query(query)),
                None => tail.to_string(),
            };
            format!("{head}{authority}{tail}")
        }
        None => redact_keywords(dsn),
    }
}

/// True for the names of parameters that hold a secret.
fn is_secret_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

/// `a=1&password=x#frag` → `a=1&password=***#frag`.
fn redact_query(query: &str) -> String {
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let mut out = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// libpq's `key = value` form, values bare or single-quoted with backslash escapes.
fn redact_keywords(dsn: &str) -> String {
    let c: Vec<char> = dsn.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(dsn.len());
    let mut i = 0;
    let copy_spaces = |i: &mut usize, out: &mut String| {
        while *i < n && c[*i].is_whitespace() {
            out.push(c[*i]);
            *i += 1;
        }
    };
    while i < n {
        copy_spaces(&mut i, &mut out);
        let start = i;
        while i < n && c[i] != '=' && !c[i].is_whitespace() {
            i += 1;
        }
        let key: String = c[start..i].iter().collect();
        out.push_str(&key);
        copy_spaces(&mut i, &mut out);
        if i >= n || c[i] != '=' {
            continue;
        }
        out.push('=');
        i += 1;
        copy_spaces(&mut i, &mut out);
        let value_start = i;
        let quoted = i < n && c[i] == '\'';
        if quoted {
            i += 1;
        }
        while i < n {
            match c[i] {
                '\\' => i += 2,
                '\'' if quoted => {
                    i += 1;
                    break;
                }
                ch if !quoted && ch.is_whitespace() => break,
                _ => i += 1,
            }
        }
        let i_end = i.min(n);
        if is_secret_key(&key) {
            out.push_str("***");
        } else {
            out.extend(&c[value_start..i_end]);
        }
        i = i_end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn redact_url_hides_passwords_in_query_parameters() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=secret&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://u:a@h/db?sslpassword=k#x"),
            "postgresql://u:***@h/db?sslpassword=***#x"
        );
        assert_eq!(
            redact_url("postgres://h/db?application_name=v"),
            "postgres://h/db?application_name=v"
        );
    }

    #[test]
    fn redact_url_hides_passwords_in_keyword_strings() {
        assert_eq!(
            redact_url("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(
            redact_url("host=h password = 'se cret\\' x' dbname=d"),
            "host=h password = *** dbname=d"
        );
        assert_eq!(redact_url("password=secret"), "password=***");
        assert_eq!(redact_url("host=h dbname=d"), "host=h dbname=d");
    }

    #[test]
    fn redaction_never_leaks_the_secret() {
        for dsn in [
            "postgres://u:secret@h/db",
            "postgres://u:se@cret@h/db",
            "postgres://h/db?password=secret",
            "postgres://u:secret@h/db?application_name=a@b",
            "user=u password=secret",
            "user=u PASSWORD='secret'",
            "user=u password=secret\\ more",
        ] {
            assert!(
                !redact_url(dsn).contains("secret"),
                "{dsn} -> {}",
                redact_url(dsn)
            );
        }
    }
}

/// The Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Building the exporter or setting the global recorder failed (e.g. code outside
    /// [`install_prometheus`] installed a recorder first).
    #[error("installing the Prometheus recorder failed: {0}")]
    Install(#[from] metrics_exporter_prometheus::BuildError),
}

/// The process's recorder, once [`install_prometheus`] succeeded.
static PROMETHEUS: std::sync::Mutex<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::Mutex::new(None);

/// Installs the process-wide Prometheus recorder, with histogram `buckets` by metric name, and
/// runs `describe` (the caller's `describe_*!` calls). The recorder is global, so only the first
/// call installs; later calls (another binary's metrics in the same test process, a second node)
/// get the same handle, which renders every metric recorded, and still describe theirs (their
/// histograms keep the first caller's buckets: summaries unless it named them).
pub fn install_prometheus(
    buckets: &[(&str, &[f64])],
    describe: fn(),
) -> Result<metrics_exporter_prometheus::PrometheusHandle, MetricsError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let mut slot = PROMETHEUS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = slot.as_ref() {
        describe();
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, bounds) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), bounds)?;
    }
    let handle = builder.install_recorder()?;
    describe();
    *slot = Some(handle.clone());
    Ok(handle)
}

/// The handle [`install_prometheus`] installed in this process, if it did.
pub fn prometheus_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    PROMETHEUS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}
