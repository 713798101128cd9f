//! Reads the config's references to AWS (`ssm:NAME`, `secretsmanager:ID#key`) once, when
//! the process starts, with the fewest requests the services allow ([`plan`]); the values
//! stay in the config for the life of the process.
//!
//! A config without references makes no request and builds no AWS client: the common cold
//! start does not grow. Errors name the key and the reference, never a value
//! ([`ReferenceProblem`]).

mod plan;
mod secrets_manager;
mod ssm;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use secrecy::SecretString;

use crate::config::reference::{Fetched, ReferenceProblem, RemoteRef, Usage};
use crate::config::{CONFIG_ENV, Config, ConfigError, ConfigSource};
pub use plan::{PARAMETERS_PER_CALL, Plan, SECRETS_PER_CALL};

/// How long one request may take; reading happens in Lambda's init phase (10 s in all).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// All attempts of one request together.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(7);

/// What one service answered for each name or id it was asked: the value, or why not.
type Answers = BTreeMap<String, Result<SecretString, ReferenceProblem>>;

/// Reads and checks the config from `source`, fetching it first if it is itself a
/// reference, then fetches every reference it holds and installs the values. Makes no
/// request, and builds no client, when there is nothing to fetch.
///
/// # Errors
/// As [`ConfigSource::read_local`] and [`Config::parse`]; [`ConfigError::Reference`] for a
/// reference that cannot be read.
pub async fn load(source: ConfigSource) -> Result<Config, ConfigError> {
    match source {
        ConfigSource::Remote(reference) => {
            let usage = Usage {
                key: CONFIG_ENV.to_owned(),
                reference,
            };
            // One SDK configuration for both rounds: the config, then what it references.
            let shared = shared_config().await;
            let fetched = fetch_with(&shared, std::slice::from_ref(&usage)).await?;
            let text =
                crate::config::reference::fetched_value(usage.key, usage.reference, &fetched)?;
            resolve_with(&shared, Config::parse(&text)?).await
        }
        local => resolve(local.read_local()?).await,
    }
}

/// Fetches the references `config` holds and installs their values.
///
/// # Errors
/// As [`fetch`].
pub async fn resolve(config: Config) -> Result<Config, ConfigError> {
    let usages = config.references()?;
    if usages.is_empty() {
        return Ok(config);
    }
    install(&shared_config().await, config, &usages).await
}

/// [`resolve`] with the SDK configuration already read.
async fn resolve_with(shared: &SdkConfig, config: Config) -> Result<Config, ConfigError> {
    let usages = config.references()?;
    install(shared, config, &usages).await
}

/// Fetches `usages` (the references of `config`) and installs their values.
async fn install(
    shared: &SdkConfig,
    mut config: Config,
    usages: &[Usage],
) -> Result<Config, ConfigError> {
    let fetched = fetch_with(shared, usages).await?;
    config.install_fetched(&fetched);
    Ok(config)
}

/// [`load`] for a caller without an async runtime: a config without references to AWS is
/// read without one, otherwise a one-thread runtime runs the requests and is dropped.
///
/// # Errors
/// As [`load`], or the runtime cannot start.
pub fn load_blocking(source: ConfigSource) -> Result<Config, ConfigError> {
    if matches!(source, ConfigSource::Remote(_)) {
        return block_on(load(source));
    }
    let config = source.read_local()?;
    if config.references()?.is_empty() {
        return Ok(config);
    }
    block_on(resolve(config))
}

fn block_on<T>(work: impl Future<Output = Result<T, ConfigError>>) -> Result<T, ConfigError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConfigError::Setting(format!("cannot start the async runtime: {e}")))?
        .block_on(work)
}

/// Fetches the values of `usages`: each parameter and secret once, in batches ([`Plan`]),
/// SSM and Secrets Manager at the same time.
///
/// # Errors
/// [`ConfigError::Reference`] for the first usage (in the order given) whose reference
/// cannot be read.
pub async fn fetch(usages: &[Usage]) -> Result<Fetched, ConfigError> {
    if usages.is_empty() {
        return Ok(Fetched::default());
    }
    fetch_with(&shared_config().await, usages).await
}

/// [`fetch`] with the SDK configuration already read.
async fn fetch_with(shared: &SdkConfig, usages: &[Usage]) -> Result<Fetched, ConfigError> {
    if usages.is_empty() {
        return Ok(Fetched::default());
    }
    let started = Instant::now();
    let plan = Plan::new(usages);
    let region = shared.region().map(ToString::to_string);
    let (parameters, secrets) = tokio::join!(
        ssm::fetch(shared, region.as_deref(), &plan.parameter_batches),
        secrets_manager::fetch(shared, region.as_deref(), &plan.secret_batches),
    );
    let mut values = BTreeMap::new();
    for usage in usages {
        let value = match &usage.reference {
            RemoteRef::Parameter(name) => answer(&parameters, name),
            RemoteRef::Secret { id, json_key } => answer(&secrets, id)
                .and_then(|whole| secrets_manager::pick(&whole, json_key.as_deref())),
        };
        match value {
            Ok(value) => {
                values.insert(usage.reference.clone(), value);
            }
            Err(problem) => {
                return Err(ConfigError::Reference {
                    key: usage.key.clone(),
                    reference: usage.reference.to_string(),
                    problem,
                });
            }
        }
    }
    // Counts only: which values there are is in the config, what they are nowhere.
    tracing::info!(
        references = usages.len(),
        requests = plan.requests(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "read the config's references from AWS"
    );
    Ok(Fetched::new(values))
}

fn answer(answers: &Answers, name: &str) -> Result<SecretString, ReferenceProblem> {
    match answers.get(name) {
        Some(Ok(value)) => Ok(value.clone()),
        Some(Err(problem)) => Err(problem.clone()),
        None => Err(ReferenceProblem::Refused(
            "the answer did not mention it".into(),
        )),
    }
}

/// The SDK configuration from the environment, as every AWS SDK reads it: region and
/// credentials (in Lambda, the function's role), `AWS_ENDPOINT_URL_SSM`,
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` for a local server. Timeouts and
/// retries suit a start-up: a few attempts, each short.
async fn shared_config() -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(ATTEMPT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(http) = crate::http::aws_https_client(&[
        "AWS_ENDPOINT_URL_SSM",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL",
    ]) {
        loader = loader.http_client(http);
    }
    loader.load().await
}

/// Why a whole request failed, for every name it asked: refused by IAM, or the service
/// could not be reached (region, credentials, endpoint), or another error of the service.
fn request_problem<E, R>(
    error: &aws_sdk_ssm::error::SdkError<E, R>,
    service: Service,
    region: Option<&str>,
    grant: impl FnOnce(&str) -> String,
) -> ReferenceProblem
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_ssm::error::SdkError;
    let region_name = region.unwrap_or("REGION");
    match error {
        SdkError::ServiceError(e) => {
            let e = e.err();
            match e.code() {
                Some("AccessDeniedException" | "AccessDenied") => ReferenceProblem::NotPermitted {
                    grant: grant(region_name),
                },
                Some(
                    code @ ("UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"),
                ) => ReferenceProblem::Unreachable(format!(
                    "{} refused the credentials ({code}); check the function's role or the AWS_* credentials",
                    service.name()
                )),
                code => ReferenceProblem::Refused(format!(
                    "{}: {}",
                    code.unwrap_or("error"),
                    e.message().unwrap_or("no message")
                )),
            }
        }
        other => {
            let endpoint = std::env::var(service.endpoint_variable())
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|_| "its default endpoint".to_owned());
            let region = region.map_or_else(
                || "no region set (AWS_REGION)".to_owned(),
                |r| format!("region {r}"),
            );
            ReferenceProblem::Unreachable(format!(
                "{} could not be asked ({region}, {endpoint}): {}; check the region, the credentials and {}",
                service.name(),
                crate::http::error_chain(other),
                service.endpoint_variable(),
            ))
        }
    }
}

/// The two services, for messages.
#[derive(Debug, Clone, Copy)]
enum Service {
    Ssm,
    SecretsManager,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Ssm => "SSM",
            Self::SecretsManager => "Secrets Manager",
        }
    }

    fn endpoint_variable(self) -> &'static str {
        match self {
            Self::Ssm => "AWS_ENDPOINT_URL_SSM",
            Self::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        }
    }
}
