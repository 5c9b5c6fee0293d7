//! Campaigns, on both backends: the same statements and row type for SQLite and PostgreSQL
//! ([`campaigns_for!`] writes the functions once for each backend's pool type).

use anyhow::Result;

use super::{Campaign, CampaignState};

/// A `campaigns` row joined with its list's name, as both backends return it.
#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    id: i64,
    name: String,
    list_id: i64,
    list_name: String,
    message_text: String,
    encoding: String,
    segments: i64,
    characters: i64,
    sender: String,
    gateway: String,
    rate: f64,
    window_start: i64,
    window_end: i64,
    starts_ms: Option<i64>,
    ends_ms: Option<i64>,
    max_attempts: i64,
    cap_hours: i64,
    state: String,
    state_reason: Option<String>,
    created_by: String,
    created_ms: i64,
    launched_ms: Option<i64>,
    completed_ms: Option<i64>,
}

impl CampaignRow {
    pub(crate) fn into_campaign(self) -> Result<Campaign> {
        Ok(Campaign {
            id: self.id,
            name: self.name,
            list_id: self.list_id,
            list: self.list_name,
            message_text: self.message_text,
            encoding: self.encoding,
            segments: self.segments,
            characters: self.characters,
            sender: self.sender,
            gateway: self.gateway,
            rate: self.rate,
            window_start: self.window_start,
            window_end: self.window_end,
            starts_ms: self.starts_ms,
            ends_ms: self.ends_ms,
            max_attempts: self.max_attempts,
            cap_hours: self.cap_hours,
            state: CampaignState::parse(&self.state)?,
            state_reason: self.state_reason,
            created_by: self.created_by,
            created_ms: self.created_ms,
            launched_ms: self.launched_ms,
            completed_ms: self.completed_ms,
        })
    }
}

pub(crate) const SELECT: &str =
    "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id";
pub(crate) const BY_ID: &str = "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id WHERE c.id = $1";
pub(crate) const BY_NAME: &str = "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id WHERE c.name = $1";

/// Writes `by_key`, `all`, `move_campaign` and `refused` for one backend's pool type.
macro_rules! campaigns_for {
    ($pool:ty) => {
        mod campaigns {
            use anyhow::Result;

            use crate::store::campaigns::{BY_ID, BY_NAME, CampaignRow, SELECT};
            use crate::store::{
                Campaign, CampaignKey, CampaignMove, CampaignState, Refused, now_ms,
            };

            /// By `#id`, name, or a bare number (a legacy all-digit name first, else the id).
            pub(crate) async fn by_key(pool: &$pool, key: &str) -> Result<Option<Campaign>> {
                let by_id = |id: i64| sqlx::query_as::<_, CampaignRow>(BY_ID).bind(id);
                let by_name =
                    |name: &str| sqlx::query_as::<_, CampaignRow>(BY_NAME).bind(name.to_string());
                let row = match CampaignKey::parse(key) {
                    CampaignKey::Id(id) => by_id(id).fetch_optional(pool).await?,
                    CampaignKey::Name(name) => by_name(name).fetch_optional(pool).await?,
                    CampaignKey::NameOrId(name, id) => {
                        match by_name(name).fetch_optional(pool).await? {
                            Some(row) => Some(row),
                            None => by_id(id).fetch_optional(pool).await?,
                        }
                    }
                };
                row.map(CampaignRow::into_campaign).transpose()
            }

            pub(crate) async fn all(pool: &$pool) -> Result<Vec<Campaign>> {
                sqlx::query_as::<_, CampaignRow>(SELECT)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(CampaignRow::into_campaign)
                    .collect()
            }

            /// One move of the table, in one statement that checks the current state.
            pub(crate) async fn move_campaign(
                pool: &$pool,
                id: i64,
                m: CampaignMove,
                reason: Option<&str>,
            ) -> Result<()> {
                let moved = sqlx::query(m.statement())
                    .bind(id)
                    .bind(reason)
                    .bind(now_ms())
                    .execute(pool)
                    .await?
                    .rows_affected();
                if moved == 0 {
                    return Err(refused(pool, id, m).await?.into());
                }
                Ok(())
            }

            /// Why a campaign move changed nothing: the state the campaign is in now.
            pub(crate) async fn refused(pool: &$pool, id: i64, m: CampaignMove) -> Result<Refused> {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT state FROM campaigns WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?;
                Ok(Refused {
                    campaign: id,
                    attempted: m,
                    found: found.map(|s| CampaignState::parse(&s)).transpose()?,
                })
            }
        }
    };
}

pub(crate) use campaigns_for;
