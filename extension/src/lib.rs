//! guildstats as a PostgreSQL extension.
//!
//! This crate is the SQL surface only: table definitions and views live in `sql/extension/*.sql`
//! at the workspace root and are compiled in here in a declared order; functions are thin
//! wrappers over `guildstats-engine`, which holds the algorithms and is tested without Postgres.

::pgrx::pg_module_magic!(name, version);

mod activity;
mod aggregate;
mod bulk_copy;
mod economy;
mod error;
mod et;
mod expanded;
mod gini;
mod jsonb;
mod retention;
mod schema;
mod voice;

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
