//! The same day on PostgreSQL: a fresh database per test, created on the server named by
//! SHOMEI_TEST_DATABASE_URL and dropped afterwards. Without that variable the test is skipped
//! loudly, or fails when CI is set (CI must never skip it silently).

use std::process::Command;

use crate::server::Store;

/// A database created for one test and dropped when it ends.
pub(crate) struct FreshDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

fn psql(admin_url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg(admin_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

impl FreshDatabase {
    pub(crate) fn create(base_url: &str) -> FreshDatabase {
        let url = url::Url::parse(base_url).expect("SHOMEI_TEST_DATABASE_URL is a URL");
        let name = format!("shomei_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut db_url = url.clone();
        db_url.set_path(&format!("/{name}"));
        psql(base_url, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("CREATE DATABASE: {e}"));
        FreshDatabase { admin_url: base_url.to_string(), name, url: db_url.to_string() }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Err(e) = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// The PostgreSQL server URL, or None after a loud skip message (panics under CI).
pub fn database_url() -> Option<String> {
    match std::env::var("SHOMEI_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("SHOMEI_TEST_DATABASE_URL is not set but CI is: the PostgreSQL e2e test must not be skipped");
            }
            eprintln!("\n*** SKIPPED: PostgreSQL e2e test (set SHOMEI_TEST_DATABASE_URL=postgres://user:pw@host/db to run it) ***\n");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practitioners_day_on_postgresql_signs_every_prescription_and_the_audit_verifies() {
    let Some(base) = database_url() else { return };
    let db = FreshDatabase::create(&base);
    crate::day::the_day(Store::Postgres(db.url.clone())).await;
}
