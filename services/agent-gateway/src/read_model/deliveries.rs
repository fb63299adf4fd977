//! What agents have acknowledged: per task, the desired status whose payload the agent took.
//!
//! Written by sessions, not by the projection: an acknowledgement is bookkeeping between this
//! gateway and an agent, not a fact for the log. Kept in the read model's database so a
//! restarted gateway sends again only what was never acknowledged.

use std::collections::BTreeMap;

use berth_agent_protocol::DesiredStatus;
use berth_projection::ReadModel;
use berth_projection::sql::Column::{BigInt, Text};
use berth_projection::sql::{Rows, bulk_upsert};

pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS ag_deliveries (
    task_id KEY_TEXT PRIMARY KEY,
    acked TEXT NOT NULL,
    acked_at BIGINT NOT NULL
)"];

/// Records that the agent acknowledged these tasks with these desired statuses. A stop, once
/// acknowledged, stays acknowledged even if a late acknowledgement of the start arrives.
pub(crate) async fn record_acks(
    read_model: &ReadModel,
    acks: &[(String, DesiredStatus)],
) -> Result<(), sqlx::Error> {
    // One row per task (a statement may not upsert the same key twice), the stop winning.
    let mut latest: BTreeMap<&str, DesiredStatus> = BTreeMap::new();
    for (task_id, desired) in acks {
        let entry = latest.entry(task_id.as_str()).or_insert(*desired);
        if *desired == DesiredStatus::Stopped {
            *entry = DesiredStatus::Stopped;
        }
    }
    let now = berth_events::EpochMillis::now().0;
    let mut rows = Rows::new();
    for (task_id, desired) in latest {
        rows.push([task_id.into(), status_text(desired).into(), now.into()]);
    }
    let mut transaction = read_model.begin_write().await?;
    bulk_upsert(
        &mut transaction,
        "ag_deliveries",
        &[Text("task_id"), Text("acked"), BigInt("acked_at")],
        "(task_id) DO UPDATE SET \
         acked = CASE WHEN ag_deliveries.acked = 'STOPPED' THEN 'STOPPED' ELSE excluded.acked END, \
         acked_at = excluded.acked_at",
        &rows,
    )
    .await?;
    transaction.commit().await
}

/// The status as the read model spells it.
pub(crate) fn status_text(desired: DesiredStatus) -> &'static str {
    match desired {
        DesiredStatus::Running => super::tasks::RUNNING,
        DesiredStatus::Stopped => super::tasks::STOPPED,
    }
}
