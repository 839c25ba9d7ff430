//! Helpers for tests that hand a `#[sqlx::test]` database to the real binary.

use sqlx::PgPool;

/// The URL of the test's own database (`#[sqlx::test]` creates one per test), built from
/// `DATABASE_URL` with the database name replaced.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (see scripts/setup-postgres.sh)");
    let name = pool
        .connect_options()
        .get_database()
        .expect("database name")
        .to_string();
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let without_query = base.split('?').next().unwrap_or(&base);
    match without_query[authority_start..].find('/') {
        Some(slash) => format!("{}/{name}", &without_query[..authority_start + slash]),
        None => format!("{without_query}/{name}"),
    }
}
