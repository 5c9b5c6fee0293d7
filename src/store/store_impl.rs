//! `impl Store` written once for both backends: [`store_impl_for!`] delegates each method to
//! the shared statements (`campaigns_for!`, `queue_for!`, launch) over the backend's pools
//! (its `read()`, `write()` and `tx()`), and the few that really differ per dialect (import,
//! claim) to the backend's own inherent methods of the same name.

/// Writes `impl Store for $store`. `launch_lock`: reads
/// `list_id, launch_after` of campaign `$1` and holds it for the transaction, no row when
/// another worker holds it; then any methods only this backend overrides.
macro_rules! store_impl_for {
    (
        $store:ident, launch_lock: $lock:literal,
        queue: { $($queue:tt)* }, store: { $($own:tt)* }
    ) => {
        #[async_trait::async_trait]
        impl crate::store::Lists for $store {
            async fn begin_import(&self, list: &str) -> Result<Box<dyn ImportSession>> {
                $store::begin_import(self, list).await
            }
            async fn previous_import(&self, list: &str, sha256: &str) -> Result<Option<PreviousImport>> {
                campaigns::previous_import(self.read(), list, sha256).await
            }
            async fn lists(&self) -> Result<Vec<ListSummary>> {
                campaigns::lists(self.read()).await
            }
            async fn list_size(&self, list: &str) -> Result<Option<i64>> {
                campaigns::list_size(self.read(), list).await
            }
            async fn list_members_page(&self, list: &str, after: i64, limit: u32) -> Result<Vec<MemberFields>> {
                campaigns::list_members_page(self.read(), list, after, limit).await
            }
            async fn add_opt_outs(&self, msisdns: &[String], source: &str) -> Result<u64> {
                queue::add_opt_outs(self.write(), msisdns, source).await
            }
            async fn remove_opt_outs(&self, msisdns: &[String]) -> Result<u64> {
                queue::remove_opt_outs(self.write(), msisdns).await
            }
        }
        #[async_trait::async_trait]
        impl crate::store::Campaigns for $store {
            async fn create_campaign(&self, c: &NewCampaign) -> Result<i64> {
                campaigns::create_campaign(self.read(), c).await
            }
            async fn campaign(&self, key: &str) -> Result<Option<Campaign>> {
                campaigns::by_key(self.read(), key).await
            }
            async fn campaigns(&self) -> Result<Vec<Campaign>> {
                campaigns::all(self.read()).await
            }
            async fn move_campaign(&self, id: i64, m: CampaignMove, reason: Option<&str>) -> Result<()> {
                campaigns::move_campaign(self.write(), id, m, reason).await
            }
            async fn begin_launch(&self, campaign_id: i64, chunk: i64) -> Result<Option<LaunchChunk>> {
                if let Some(first) = launch_chunk::begin(self.tx().await?, campaign_id, chunk).await? {
                    self.launched_rows().await?;
                    return Ok(Some(first));
                }
                let refused = campaigns::refused(self.write(), campaign_id, CampaignMove::Launch).await?;
                if refused.found == Some(CampaignState::Running) {
                    // Another process launched it a moment ago: join it.
                    return Ok(None);
                }
                Err(refused.into())
            }
            async fn continue_launch(&self, campaign_id: i64, chunk: i64) -> Result<LaunchProgress> {
                let progress = launch_chunk::next(self.tx().await?, $lock, campaign_id, chunk).await?;
                if matches!(&progress, LaunchProgress::Copied(c) if c.done) {
                    self.launched_rows().await?;
                }
                Ok(progress)
            }
            async fn state_counts(&self, campaign_id: i64) -> Result<Vec<(String, i64)>> {
                queue::state_counts(self.read(), campaign_id).await
            }
            async fn held_by_cap(&self, campaign_id: i64) -> Result<(i64, Option<i64>)> {
                campaigns::held_by_cap(self.read(), campaign_id).await
            }
            async fn cap_conflicts(&self, campaign_id: i64, cap_ms: i64) -> Result<i64> {
                campaigns::cap_conflicts(self.read(), campaign_id, cap_ms).await
            }
            async fn reconcile(&self, campaign_id: i64, resend: bool) -> Result<u64> {
                queue::reconcile(self.tx().await?, campaign_id, resend).await
            }
        }
        #[async_trait::async_trait]
        impl crate::store::Queue for $store {
            async fn register_worker(&self, id: &str, campaign_id: i64, host: &str, pid: i64, process: Option<&str>) -> Result<()> {
                campaigns::register_worker(self.write(), id, campaign_id, host, pid, process).await
            }
            async fn heartbeat(&self, worker: &str, lease_until_ms: i64) -> Result<()> {
                campaigns::heartbeat(self.write(), worker, lease_until_ms).await
            }
            async fn stop_worker(&self, worker: &str) -> Result<()> {
                campaigns::stop_worker(self.write(), worker).await
            }
            async fn workers(&self, campaign_id: i64) -> Result<Vec<WorkerInfo>> {
                campaigns::workers(self.read(), campaign_id).await
            }
            async fn recover(&self, campaign_id: i64, now_ms: i64, dead: &[String], dedups: bool) -> Result<Recovered> {
                queue::recover(self.tx().await?, campaign_id, now_ms, dead, dedups).await
            }
            async fn claim(&self, campaign_id: i64, worker: &str, limit: u32, now_ms: i64, lease_until_ms: i64) -> Result<Vec<Claimed>> {
                $store::claim(self, campaign_id, worker, limit, now_ms, lease_until_ms).await
            }
            async fn write_cycle(&self, worker: &str, outcomes: &[Outcome], mark: Option<&Mark>) -> Result<(u64, Vec<(i64, i64)>)> {
                let now = now_ms();
                queue::write_cycle(self.tx().await?, now, worker, outcomes, mark).await
            }
            async fn release(&self, campaign_id: i64, worker: &str) -> Result<u64> {
                queue::release(self.write(), campaign_id, worker).await
            }
            async fn release_unsent(&self, worker: &str, ids: &[i64]) -> Result<u64> {
                queue::release_unsent(self.write(), worker, ids).await
            }
            async fn next_due_ms(&self, campaign_id: i64) -> Result<Option<i64>> {
                campaigns::next_due_ms(self.read(), campaign_id).await
            }
            async fn complete_if_done(&self, campaign_id: i64) -> Result<bool> {
                queue::complete_if_done(self.write(), campaign_id).await
            }
            async fn in_flight_count(&self, campaign_id: i64) -> Result<i64> {
                queue::in_flight_count(self.read(), campaign_id).await
            }
            async fn delivery_attributes(&self, ids: &[i64]) -> Result<Vec<(i64, Option<String>)>> {
                queue::delivery_attributes(self.read(), ids).await
            }
            fn reference(&self, campaign_id: i64, delivery_id: i64) -> String {
                self.refs.make(campaign_id, delivery_id)
            }
            $($queue)*
        }
        #[async_trait::async_trait]
        impl crate::store::Audit for $store {
            async fn audit_append(&self, actor: &str, action: &str, subject: &str, details: &serde_json::Value) -> Result<AuditEntry> {
                queue::audit_append(self.tx().await?, actor, action, subject, details).await
            }
            async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
                campaigns::audit_entries(self.read()).await
            }
        }
        #[async_trait::async_trait]
        impl crate::store::Store for $store {
            fn is_read_only(&self) -> bool {
                self.read_only
            }
            $($own)*
        }
    };
}

pub(crate) use store_impl_for;
