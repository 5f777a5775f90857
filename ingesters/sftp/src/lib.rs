//! The SFTP puller of ET:Legacy stats files: it watches a directory on the game server, takes
//! each file once it has stopped growing, and pushes it byte for byte into raw_et_stats_files
//! through the common sink (the extension imports it on insert). It never writes or deletes
//! on the remote side. ssh2 is blocking, so the pulling runs on its own thread.

pub mod backfill;
pub mod check;
pub mod cli;
pub mod hostkey;
pub mod ledger;
pub mod name_filter;
pub mod pull;
pub mod remote;
pub mod secret;
pub mod settling;
pub mod stats_file;
pub mod stop;
