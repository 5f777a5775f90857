-- guildstats 0.1.0 -> 0.2.0
--
-- Run by `ALTER EXTENSION guildstats UPDATE`. Every schema change made since 0.1.0 is written
-- here as well as in sql/extension/*.sql; the upgrade test (tests/tests/upgrade.rs) proves that
-- an upgraded database has exactly the schema of a fresh install and keeps its rows.
\echo Use "ALTER EXTENSION guildstats UPDATE TO '0.2.0'" to load this file. \quit

