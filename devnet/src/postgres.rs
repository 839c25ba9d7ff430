//! The devnet's Postgres: a server given by `--db.url`, or a throwaway cluster started with the
//! local PostgreSQL's `initdb`/`pg_ctl` (as the `postgres` user when we run as root), on a free
//! port, in the run directory's `postgres/` (so `--keep` keeps the databases beside the logs, and
//! [`Postgres::reopen`] says how to look at them again). Each validator and label miner gets its
//! own database.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
// Database names are checked to be [a-z0-9_] before they are put in SQL.
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::process::{free_port, run_command};

/// How long `initdb` and `pg_ctl` may take.
const PG_TIMEOUT: Duration = Duration::from_secs(120);

/// A Postgres server the devnet can create databases on.
#[derive(Debug)]
pub struct Postgres {
    /// Superuser URL of the server's `postgres` database.
    admin_url: String,
    /// Prefix of the databases this run creates (unique on a shared server).
    prefix: String,
    /// The throwaway cluster, when we started one.
    cluster: Option<Cluster>,
    /// Databases created, dropped at the end on a shared server.
    created: Vec<String>,
}

/// A cluster started by the devnet.
#[derive(Debug)]
struct Cluster {
    /// `/usr/lib/postgresql/<v>/bin`.
    bin: PathBuf,
    /// Holds `data/`, the socket and the server log.
    dir: PathBuf,
    /// Run `initdb`/`pg_ctl` through `su postgres` (we are root; Postgres refuses to run as root).
    as_postgres: bool,
}

impl Postgres {
    /// Uses the server at `url`: databases are named `devnet_<pid>_…` and dropped by
    /// [`Postgres::stop`] unless kept.
    pub async fn external(url: &str) -> anyhow::Result<Self> {
        let conn = PgConnection::connect(url)
            .await
            .with_context(|| format!("while connecting to --db.url {}", redact(url)))?;
        conn.close().await.ok();
        Ok(Self {
            admin_url: url.to_owned(),
            prefix: format!("devnet_{}_", std::process::id()),
            cluster: None,
            created: Vec::new(),
        })
    }

    /// Where a throwaway cluster of a run in `run_dir` goes: `run_dir/postgres`, where `--keep`
    /// keeps it. Run as root, the cluster runs as the `postgres` user, which must be able to walk
    /// into it: the run directory is opened for walking through (not listing: mode `711`), and
    /// when a folder above it is closed to others (say `/root`) a temporary folder is used
    /// instead (`false`: not inside the run directory).
    pub fn place_cluster(run_dir: &Path) -> anyhow::Result<(PathBuf, bool)> {
        use std::os::unix::fs::PermissionsExt;
        let inside = run_dir.join("postgres");
        if !rustix::process::geteuid().is_root() {
            return Ok((inside, true));
        }
        let run_dir = run_dir
            .canonicalize()
            .with_context(|| format!("while resolving {}", run_dir.display()))?;
        let walkable = run_dir.ancestors().skip(1).all(|folder| {
            std::fs::metadata(folder).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
        });
        if walkable {
            let mode = std::fs::metadata(&run_dir)?.permissions().mode();
            std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(mode | 0o711))
                .with_context(|| {
                    format!("while opening {} to the postgres user", run_dir.display())
                })?;
            return Ok((inside, true));
        }
        let outside = tempfile::Builder::new()
            .prefix("devnet-pg-")
            .tempdir()
            .context("while creating the Postgres folder")?
            .keep();
        Ok((outside, false))
    }

    /// Starts a throwaway cluster in `dir` (created; must be reachable by the `postgres` user
    /// when we are root) on a free port, with the newest `/usr/lib/postgresql/*/bin`.
    pub async fn throwaway(dir: &Path, log: &Path) -> anyhow::Result<Self> {
        let bin = find_pg_bin()?;
        let as_postgres = rustix::process::geteuid().is_root();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
        if as_postgres {
            let dir_arg = dir.as_os_str();
            run_command(
                Path::new("chown"),
                &[OsStr::new("-R"), OsStr::new("postgres"), dir_arg],
                &[],
                log,
                Duration::from_secs(30),
            )
            .await
            .context("while giving the Postgres folder to the `postgres` user (is there one? the `postgresql` package creates it)")?;
        }
        let cluster = Cluster {
            bin,
            dir: dir.to_path_buf(),
            as_postgres,
        };
        let data = dir.join("data");
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-N",
                ],
                log,
            )
            .await
            .context("while creating the throwaway Postgres cluster (initdb)")?;
        let port = free_port()?;
        // In the cluster's own configuration (not `pg_ctl -o`), so a kept cluster starts again
        // with a plain `pg_ctl start` on the same port.
        let settings = format!(
            "\n# devnet\nport = {port}\nunix_socket_directories = '{}'\n\
             listen_addresses = '127.0.0.1'\nmax_connections = 200\nfsync = off\n",
            dir.display().to_string().replace('\'', "''")
        );
        let conf = data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
            .with_context(|| format!("while configuring {}", conf.display()))?;
        cluster
            .run(
                "pg_ctl",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-l",
                    &dir.join("server.log").to_string_lossy(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                log,
            )
            .await
            .with_context(|| {
                format!(
                    "while starting the throwaway Postgres (see {})",
                    dir.join("server.log").display()
                )
            })?;
        Ok(Self {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            prefix: "devnet_".to_owned(),
            cluster: Some(cluster),
            created: Vec::new(),
        })
    }

    /// A short description for the progress line.
    pub fn describe(&self) -> String {
        match &self.cluster {
            Some(c) => format!(
                "throwaway cluster {} ({})",
                redact(&self.admin_url),
                c.dir.display()
            ),
            None => format!("server {}", redact(&self.admin_url)),
        }
    }

    /// Creates database `<prefix><name>` (dropping a leftover of that name) and returns its URL.
    pub async fn create_database(&mut self, name: &str) -> anyhow::Result<String> {
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!("database name {name:?} is not [a-z0-9_]");
        }
        let db = format!("{}{name}", self.prefix);
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .with_context(|| format!("while connecting to {}", redact(&self.admin_url)))?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("while dropping a leftover database {db}"))?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("while creating database {db}"))?;
        conn.close().await.ok();
        self.created.push(db.clone());
        database_url(&self.admin_url, &db)
    }

    /// The URL of database `<prefix><name>` (made by [`Postgres::create_database`]).
    pub fn url_of(&self, name: &str) -> anyhow::Result<String> {
        database_url(&self.admin_url, &format!("{}{name}", self.prefix))
    }

    /// The commands that open the kept database `<prefix><name>` again once the devnet has
    /// stopped: start the cluster (when the devnet made one) and serve `validator`'s dashboard
    /// from it; then how to stop the cluster.
    pub fn reopen(&self, validator: &Path, name: &str) -> anyhow::Result<Vec<String>> {
        let url = self.url_of(name)?;
        let dashboard = format!(
            "{} dashboard --db.url {}",
            shell_quote(&validator.to_string_lossy()),
            shell_quote(&redact(&url))
        );
        let Some(cluster) = &self.cluster else {
            return Ok(vec![dashboard]);
        };
        let data = cluster.dir.join("data");
        let pg_ctl = |args: &str| {
            let command = format!(
                "{} -D {} {args}",
                shell_quote(&cluster.bin.join("pg_ctl").to_string_lossy()),
                shell_quote(&data.to_string_lossy()),
            );
            if cluster.as_postgres {
                format!("su postgres -c {}", shell_quote(&command))
            } else {
                command
            }
        };
        let log = cluster.dir.join("server.log");
        Ok(vec![
            pg_ctl(&format!(
                "-l {} -w start",
                shell_quote(&log.to_string_lossy())
            )),
            dashboard,
            pg_ctl("-w stop"),
        ])
    }

    /// The throwaway cluster's folder, when we started one.
    pub fn cluster_dir(&self) -> Option<PathBuf> {
        self.cluster.as_ref().map(|c| c.dir.clone())
    }

    /// Stops the throwaway cluster, or drops this run's databases on a shared server unless
    /// `keep`. Returns a line for the summary.
    pub async fn stop(&mut self, keep: bool, log: &Path) -> String {
        match &self.cluster {
            Some(cluster) => {
                let data = cluster.dir.join("data");
                match cluster
                    .run(
                        "pg_ctl",
                        &[
                            "-D",
                            &data.to_string_lossy(),
                            "-m",
                            "fast",
                            "-w",
                            "-t",
                            "30",
                            "stop",
                        ],
                        log,
                    )
                    .await
                {
                    Ok(()) => "stopped".to_owned(),
                    Err(e) => format!("could not stop: {e:#}"),
                }
            }
            None if keep => format!("kept databases {}", self.created.join(", ")),
            None => {
                let mut failed = Vec::new();
                match PgConnection::connect(&self.admin_url).await {
                    Ok(mut conn) => {
                        for db in &self.created {
                            let drop = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                            if sqlx::query(AssertSqlSafe(drop))
                                .execute(&mut conn)
                                .await
                                .is_err()
                            {
                                failed.push(db.clone());
                            }
                        }
                        conn.close().await.ok();
                    }
                    Err(_) => failed.clone_from(&self.created),
                }
                if failed.is_empty() {
                    format!("dropped {} databases", self.created.len())
                } else {
                    format!("could not drop {}", failed.join(", "))
                }
            }
        }
    }
}

impl Cluster {
    /// Runs a PostgreSQL program (as `postgres` when we are root).
    async fn run(&self, program: &str, args: &[&str], log: &Path) -> anyhow::Result<()> {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut line = shell_quote(&exe.to_string_lossy());
            for arg in args {
                line.push(' ');
                line.push_str(&shell_quote(arg));
            }
            run_command(
                Path::new("su"),
                &[
                    OsStr::new("postgres"),
                    OsStr::new("-s"),
                    OsStr::new("/bin/sh"),
                    OsStr::new("-c"),
                    OsStr::new(&line),
                ],
                &[],
                log,
                PG_TIMEOUT,
            )
            .await?;
        } else {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            run_command(&exe, &args, &[], log, PG_TIMEOUT).await?;
        }
        Ok(())
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`.
fn find_pg_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL found: install the `postgresql` package (Debian/Ubuntu: \
             `apt-get install postgresql`; its initdb and pg_ctl live in /usr/lib/postgresql/*/bin), \
             or pass --db.url postgres://USER@HOST:PORT/postgres of a server where USER may create databases"
        ),
    }
}

/// `url` with its database (path) replaced by `db`.
pub fn database_url(url: &str, db: &str) -> anyhow::Result<String> {
    let mut parsed =
        reqwest::Url::parse(url).with_context(|| format!("{} is not a URL", redact(url)))?;
    parsed.set_path(&format!("/{db}"));
    Ok(parsed.to_string())
}

/// `text` as one word for `sh`: unchanged when it is plain, else single-quoted.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:@=,+".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `url` without its password (in any connection-string form), for messages.
pub use subnet_common::telemetry::redact_url as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url(
                "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
                "devnet_v1"
            )
            .unwrap(),
            "postgres://u:p@127.0.0.1:5432/devnet_v1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@localhost:55432", "x").unwrap(),
            "postgres://postgres@localhost:55432/x"
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(shell_quote("/tmp/run-1/data"), "/tmp/run-1/data");
        assert_eq!(
            shell_quote("postgres://postgres@127.0.0.1:5/db"),
            "postgres://postgres@127.0.0.1:5/db"
        );
        assert_eq!(shell_quote("/tmp/my run"), "'/tmp/my run'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
