//! The production store: one DynamoDB table shared by every Lambda instance.
//!
//! Items (partition key `pk`, TTL attribute `expires_at` in epoch seconds):
//!
//! | kind | `pk` | attributes |
//! |---|---|---|
//! | dedup | `dedup#{app}#{message key}` | `st` (`p` in progress, `d` done), `owner`, `lease_until` (ms), `fin` (who completed it), `reply` (done, when not empty) |
//! | dedup with a reply job | as dedup, and | `job` (state), `app`, `authz` (Open Platform), `msg` (callback XML), `answer_by` (ms), `job_worker`, `job_until` (ms), `reason` (failed), `msgid` (sent) |
//! | signature binding | `sig#{app}#{signature}` | `body` (the [`fingerprint`] of the body it was first seen with) |
//! | token | `token#{scope}` | `tok`, `tok_fp` (its [`fingerprint`]), `tok_exp` and `tok_ref` (expiry and refresh point, ms), `lease_owner`, `lease_until` (ms) |
//! | Open Platform ticket, authorization | `ticket#{component}`, `authz#{component}#{authorizer}` | see the `open` module; no `expires_at` |
//!
//! `reply`, `msg`, `tok`, tickets and refresh tokens are sealed (AES-256-GCM, [`Sealing`]) once the gateway installs
//! its keys: the table, its backups and its stream hold no message, reply or token in clear.
//!
//! A new callback costs one conditional `PutItem` (the claim) and one conditional
//! `UpdateItem` (the completion).
//!
//! Every conditional write recognises its own earlier write. The SDK retries an attempt
//! whose answer did not come in time; when that attempt's write had landed, the retry fails
//! its condition against the very item it wrote (the claim is "in progress", the job
//! "running", the lease "held"). So a failed condition is always looked at: the item comes
//! back with the failure (`ReturnValuesOnConditionCheckFailure`, free on DynamoDB; servers
//! that do not return it are asked with one consistent `GetItem`), and if it shows this
//! caller's own write (its owner, worker or lease holder, in the state the write sets) the
//! write is reported as made. A losing claim reads its answer (done, or in progress) from
//! that same item. Releasing a lease and dropping a refused token only remove: repeated,
//! they find nothing to remove, which their callers take the same way.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::sealing::Sealing;
use super::{
    CachedToken, Claim, DedupRecord, DedupStore, DedupTimes, JobEnd, JobRecord, JobState, JobStore,
    NewJob, SignatureStore, StoreError, TokenRecord, TokenStore, fingerprint,
};
use crate::clock::EpochMillis;

mod client;
mod dedup;
mod item;
mod open;
mod stream;
mod tokens;

pub use client::with_timeouts;
use client::*;
use item::*;

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const EXPIRES_AT: &str = "expires_at";
const STATE_IN_PROGRESS: &str = "p";
const STATE_DONE: &str = "d";
const JOB: &str = "job";
const JOB_WORKER: &str = "job_worker";
const OWNER: &str = "owner";
/// Who completed a dedup record with `complete`.
const COMPLETED_BY: &str = "fin";

/// What a claim write carries besides the claim.
#[derive(Debug, Clone, Copy)]
enum ClaimWith<'a> {
    /// Nothing: the claim alone, in progress.
    Nothing,
    /// A reply job for a worker to decide, in progress.
    Job(NewJob<'a>),
    /// The reply, decided before the claim: the record is done at once.
    Reply(Option<&'a str>),
}
const LEASE_OWNER: &str = "lease_owner";

/// What a conditional write did.
enum Written {
    /// It was made; the item after it (when `ALL_NEW` was asked for), else empty.
    Made(Item),
    /// Its condition failed; the item as it was then (`None`: there is none).
    ConditionFailed(Option<Item>),
}
/// Client timeouts for the store. A callback has a few seconds in all, so a slow store must
/// fail fast and let the callback be answered without it.
#[derive(Debug, Clone, Copy)]
pub struct DynamoTimeouts {
    /// One attempt of one request.
    pub attempt: Duration,
    /// All attempts of one request together.
    pub operation: Duration,
    /// Attempts per request (1 = no retry).
    pub max_attempts: u32,
}

impl DynamoTimeouts {
    /// Two attempts of at most `attempt` each, with room for the short backoff between
    /// them: what `[store] timeout_ms` configures.
    pub fn per_attempt(attempt: Duration) -> Self {
        Self {
            attempt,
            operation: attempt * 2 + Duration::from_millis(50),
            max_attempts: 2,
        }
    }
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The keys that seal replies, messages and tokens in the table ([`Sealing`]), once the
    /// gateway installs them; shared by clones.
    sealing: Arc<OnceLock<Sealing>>,
}

impl DynamoStore {
    /// A store over an existing client.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            sealing: Arc::new(OnceLock::new()),
        }
    }

    /// Seals replies, job messages and tokens with `sealing` from now on (the first call
    /// wins; a store shared by several gateways keeps the first one's keys). Returns whether
    /// these keys were installed.
    pub fn install_sealing(&self, sealing: Sealing) -> bool {
        self.sealing.set(sealing).is_ok()
    }

    /// This store with the sealing keys of `other` (installed on it now or later): a second
    /// client of the same table, e.g. one that bypasses a proxy, reading what it wrote.
    #[must_use]
    pub fn sharing_keys_with(mut self, other: &DynamoStore) -> Self {
        self.sealing = Arc::clone(&other.sealing);
        self
    }

    /// `value` of `field` of the item `key` as stored: sealed when keys are installed.
    fn sealed(&self, key: &str, field: &str, value: &str) -> AttributeValue {
        match self.sealing.get() {
            Some(sealing) => AttributeValue::S(sealing.seal(key, field, value)),
            None => s(value),
        }
    }

    /// A stored `field` of the item `key`, opened.
    fn opened(&self, key: &str, field: &str, stored: &str) -> Result<String, StoreError> {
        match self.sealing.get() {
            Some(sealing) => sealing.open(key, field, stored),
            None if crate::crypto::at_rest::is_sealed(stored) => Err(corrupt(
                key,
                format!("its {field} is sealed and no keys are installed"),
            )),
            None => Ok(stored.to_owned()),
        }
    }

    /// Reads a dedup item; `None` when it has expired (TTL deletion lags).
    fn dedup_from_item(
        &self,
        key: &str,
        item: &Item,
        now_ms: EpochMillis,
    ) -> Result<Option<DedupRecord>, StoreError> {
        let record = dedup_from_item(key, item, now_ms)?;
        Ok(match record {
            Some(DedupRecord::Done { reply: Some(reply) }) => Some(DedupRecord::Done {
                reply: Some(self.opened(key, "reply", &reply)?),
            }),
            other => other,
        })
    }

    /// Reads the job of a dedup item that has one.
    fn job_from_item(&self, key: &str, item: &Item) -> Result<JobRecord, StoreError> {
        let mut job = job_from_item(key, item)?;
        if let Some(message) = job.message.take() {
            job.message = Some(self.opened(key, "msg", &message)?);
        }
        Ok(job)
    }

    /// A store configured from the environment the way every AWS SDK is: region and
    /// credentials (in Lambda, from the function's role), and `AWS_ENDPOINT_URL_DYNAMODB` or
    /// `AWS_ENDPOINT_URL` to use a local server. No request is made here.
    pub async fn from_env(table: impl Into<String>, timeouts: DynamoTimeouts) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(http) = aws_https_client() {
            loader = loader.http_client(http);
        }
        let shared = loader.load().await;
        Self::new(
            Client::from_conf(with_timeouts(
                aws_sdk_dynamodb::config::Builder::from(&shared),
                timeouts,
            )),
            table,
        )
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The longest one request may take, retries included: the client's operation timeout
    /// (1 s when none is set). A write the client gave up on may still take effect until then.
    pub fn longest_request(&self) -> Duration {
        self.client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_timeout())
            .unwrap_or(Duration::from_secs(1))
    }

    /// The client, for tooling and tests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An `UpdateItem` of the item `key`.
    fn update(&self, key: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
    }

    /// Sends a conditional `UpdateItem` of `key`; on a failed condition, the item as it was.
    async fn conditional(
        &self,
        key: &str,
        request: UpdateItemFluentBuilder,
    ) -> Result<Written, StoreError> {
        let result = request
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(out) => return Ok(Written::Made(out.attributes.unwrap_or_default())),
            Err(err) if is_condition_failed(&err) => err,
            Err(err) => return Err(backend_error(err)),
        };
        let returned = match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        Ok(Written::ConditionFailed(
            self.found_at_failure(key, returned).await?,
        ))
    }

    /// The item a failed condition was checked against: as it came back with the failure
    /// (`ReturnValuesOnConditionCheckFailure`), or, from servers that do not return it, read
    /// with one consistent `GetItem`.
    async fn found_at_failure(
        &self,
        key: &str,
        returned: Option<Item>,
    ) -> Result<Option<Item>, StoreError> {
        match returned {
            Some(item) => Ok(Some(item)),
            None => self.get(key).await,
        }
    }

    /// A conditional write's outcome: made, or not made but found to be this caller's own
    /// earlier write (`own` says whether the item as found shows it).
    async fn made_or_own(
        &self,
        key: &str,
        request: UpdateItemFluentBuilder,
        own: impl FnOnce(&Item) -> bool,
    ) -> Result<bool, StoreError> {
        Ok(match self.conditional(key, request).await? {
            Written::Made(_) => true,
            Written::ConditionFailed(found) => found.as_ref().is_some_and(own),
        })
    }

    /// A claim's conditional `PutItem`, with the job's attributes when it carries one. A
    /// record carrying a job is never taken over (its worker decides it).
    async fn claim_item(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        with: ClaimWith<'_>,
    ) -> Result<Claim, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(key))
            .item(OWNER, s(owner))
            .item(EXPIRES_AT, n(times.expires_at_secs()));
        put = match with {
            ClaimWith::Reply(reply) => {
                // Claimed and completed at once: `fin` makes a retry of this write its own.
                let put = put.item("st", s(STATE_DONE)).item(COMPLETED_BY, s(owner));
                match reply {
                    Some(reply) => put.item("reply", self.sealed(key, "reply", reply)),
                    None => put,
                }
            }
            _ => put
                .item("st", s(STATE_IN_PROGRESS))
                .item("lease_until", n(times.lease_until_ms())),
        };
        if let ClaimWith::Job(job) = with {
            put = put
                .item(JOB, s(JobState::Pending.as_str()))
                .item("app", s(job.app))
                .item("msg", self.sealed(key, "msg", job.message))
                .item("answer_by", n(job.answer_by_ms));
            if let Some(authorizer) = job.authorizer_app_id {
                put = put.item("authz", s(authorizer));
            }
        }
        let result = put
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s OR (st = :p AND lease_until < :now_ms AND attribute_not_exists(job))",
            )
            .expression_attribute_values(":now_s", n(times.now_ms / 1000))
            .expression_attribute_values(":now_ms", n(times.now_ms))
            .expression_attribute_values(":p", s(STATE_IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::Won),
            Err(err) if is_condition_failed(&err) => err,
            Err(err) => return Err(backend_error(err)),
        };
        let returned = match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        let existing = self.found_at_failure(key, returned).await?;
        // This claim's own earlier attempt, landed: the claim is made.
        let own_state = match with {
            ClaimWith::Reply(_) => STATE_DONE,
            _ => STATE_IN_PROGRESS,
        };
        if existing.as_ref().is_some_and(|item| {
            get_s(item, OWNER) == Some(owner) && get_s(item, "st") == Some(own_state)
        }) {
            return Ok(Claim::Won);
        }
        let record = match existing {
            Some(item) => self.dedup_from_item(key, &item, times.now_ms)?,
            None => None,
        };
        Ok(match record {
            Some(DedupRecord::Done { reply }) => Claim::Done { reply },
            Some(DedupRecord::InProgress { lease_until_ms }) => {
                Claim::InProgress { lease_until_ms }
            }
            // Gone or expired between the write and the read: report it as a lease that has
            // just run out, so the caller claims again rather than waiting.
            None => Claim::InProgress {
                lease_until_ms: times.now_ms.saturating_sub(1),
            },
        })
    }

    /// Every reply job in the table (in `state`, if given), read with a paginated Scan: an
    /// operator's tool (`wxgate jobs`), never the gateway's path, and outside the function
    /// role's permissions. Expired items are left out.
    ///
    /// # Errors
    /// The scan failed, or a job item cannot be read.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        now_ms: EpochMillis,
    ) -> Result<Vec<(String, JobRecord)>, StoreError> {
        let mut jobs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":now_s", n(now_ms / 1000))
                .set_exclusive_start_key(start.take());
            scan = match state {
                Some(state) => scan
                    .filter_expression("job = :state AND expires_at >= :now_s")
                    .expression_attribute_values(":state", s(state.as_str())),
                None => scan.filter_expression("attribute_exists(job) AND expires_at >= :now_s"),
            };
            let page = scan.send().await.map_err(backend_error)?;
            for item in page.items.unwrap_or_default() {
                let key = get_s(&item, PK).unwrap_or_default().to_owned();
                // A listing shows no message: it is not opened (nor needs the keys).
                let mut job = job_from_item(&key, &item)?;
                job.message = None;
                jobs.push((key, job));
            }
            match page.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(jobs),
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend_error)?;
        Ok(out.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_embedded_roots_are_five_parseable_certificates() {
        // The SDK parses them with `expect` when it first connects: they must be valid.
        let roots = crate::http::AMAZON_TRUST_SERVICES_ROOTS;
        let certs = CertificateDer::pem_slice_iter(roots.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(certs.len(), 5);
    }

    #[test]
    fn dedup_items_read_back_and_expired_ones_read_as_absent() {
        let item: Item = [
            (PK.to_owned(), s("dedup#demo#msg|1")),
            ("st".to_owned(), s(STATE_DONE)),
            ("reply".to_owned(), s("<xml/>")),
            (EXPIRES_AT.to_owned(), n(2_000)),
        ]
        .into();
        assert_eq!(
            dedup_from_item("k", &item, 2_000_999).unwrap(),
            Some(DedupRecord::Done {
                reply: Some("<xml/>".into())
            })
        );
        assert_eq!(dedup_from_item("k", &item, 2_001_000).unwrap(), None);
        let mut broken = item.clone();
        broken.insert("st".into(), s("?"));
        assert!(matches!(
            dedup_from_item("k", &broken, 0),
            Err(StoreError::Corrupt { .. })
        ));
        broken.remove(EXPIRES_AT);
        assert!(dedup_from_item("k", &broken, 0).is_err());
    }
}
