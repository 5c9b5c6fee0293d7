//! smscast: send a public-awareness SMS to every subscriber on a list, through carrier
//! gateways, at exactly the allowed rate, with a complete, auditable record of every message.
//!
//! # Layout
//!
//! * [`cli`] — raw flags (clap); [`commands`] — one module per subcommand group.
//! * [`msisdn`], [`district`], [`csv_source`], [`import`], [`import_sort`] — messy CSVs in,
//!   canonical numbers out, sorted by number.
//! * [`encoding`], [`message`], [`template`] — GSM-7/UCS-2, segments, folding; message files;
//!   placeholders filled per recipient.
//! * [`store`] — every durable fact, behind one interface (SQLite by default, PostgreSQL for
//!   many workers).
//! * [`dispatch`] — claim → rate limit → submit → record, crash-safe; many workers share a rate.
//! * [`gateway`] — adapters behind one trait (Kannel, Twilio, http-json); [`dlr`] — the
//!   delivery-receipt server; [`simulator`] — a gateway to test against.
//! * [`dlr`] — the delivery-receipt server: authenticated, durable, never regressing.
//! * [`report`], [`audit`] — what auditors read; [`window`] — sending hours in Vietnam time.
//! * [`text`] — names and texts made safe for spreadsheets (CSV injection) and terminals
//!   (escape sequences).

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod csv_source;
pub mod dispatch;
pub mod district;
pub mod dlr;
pub mod encoding;
pub mod gateway;
pub mod import;
pub mod import_sort;
pub mod message;
pub mod msisdn;
pub mod observe;
pub mod report;
pub mod sample;
pub mod send_lock;
pub mod simulator;
pub mod store;
pub mod template;
pub mod text;
pub mod window;
