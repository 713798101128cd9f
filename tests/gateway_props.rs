//! Hostile input through the whole gateway, in process: arbitrary methods, paths, query
//! strings and bodies never panic, never get a 200, and always get one of the documented
//! statuses. And configs as an operator writes them: every well-formed one is accepted as
//! written and serves its apps, and every one with a single mistake is refused, saying
//! which setting of which app is wrong.

mod support;

use http::Method;
use proptest::prelude::*;
use support::calls::{text_of, timed_answer};
use support::sample::{KEY, TOKEN, header, wecom_app};
use wxgate::clock::unix_now;
use wxgate::config::{Config, ConfigError};
use wxgate::gateway::{CallbackRequest, Gateway};
use wxgate::simulate::{Answer, PlatformSim, text_xml};

/// One app per platform mode on the sample's token and key.
fn config_text() -> String {
    format!(
        "{}\n\
         [[apps]]\nname = \"blog\"\nplatform = \"mp\"\ntoken = \"{TOKEN}\"\n\
         [[apps]]\nname = \"comp\"\nplatform = \"open\"\napp_id = \"wxcomp\"\ntoken = \"{TOKEN}\"\n\
         encoding_aes_key = \"{KEY}\"\n",
        wecom_app("demo", "[apps.reply]\necho = true\n")
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/wecom/demo".to_owned()),
        Just("/mp/blog".to_owned()),
        Just("/open/comp".to_owned()),
        Just("/open/comp/wxauth".to_owned()),
        "/[a-z]{0,6}/[a-z$./]{0,8}(/[a-z]{0,4})?",
        ".{0,40}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let param = prop_oneof![
        Just("msg_signature"),
        Just("signature"),
        Just("timestamp"),
        Just("nonce"),
        Just("echostr"),
        Just("encrypt_type"),
        Just("x"),
    ];
    let value = prop_oneof![
        "[0-9a-f]{40}",
        "[0-9]{1,22}",
        "[A-Za-z0-9+/=% ]{0,60}",
        Just("aes".to_owned()),
        ".{0,20}",
    ];
    prop::option::of(
        prop::collection::vec((param, value), 0..8).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "<xml><ToUserName>a</ToUserName><Encrypt>[A-Za-z0-9+/=]{0,120}</Encrypt></xml>"
            .prop_map(String::into_bytes),
        "<xml><MsgType>text</MsgType><Content>.{0,20}</Content></xml>".prop_map(String::into_bytes),
    ]
}

// ------------------------------------------------------------------------------------------
// Configs as an operator writes them
// ------------------------------------------------------------------------------------------

/// How an app receives its callbacks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Wecom,
    /// An Official Account in plaintext mode: no key, the AppID optional.
    MpPlaintext,
    /// An Official Account in safe mode: key and AppID.
    MpSafe,
    Open,
}

/// One `[[apps]]` table: the model a config is written from.
#[derive(Debug, Clone)]
struct App {
    name: String,
    platform: &'static str,
    corp_id: Option<String>,
    app_id: Option<String>,
    agent_id: Option<u64>,
    token: String,
    key: Option<String>,
    previous_key: Option<String>,
    secret: Option<String>,
    plaintext_late_replies: bool,
    /// A key wxgate does not know.
    unknown: Option<&'static str>,
}

/// `[gateway]`.
#[derive(Debug, Clone)]
struct Settings {
    budget_ms: u64,
    replay_window_secs: u64,
    max_body_bytes: u64,
    deferred_limit_ms: u64,
}

/// The largest integer TOML can write (its integers are 64-bit signed).
const TOML_INT_MAX: u64 = i64::MAX as u64;

/// A TOML basic string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn render(settings: &Settings, apps: &[App]) -> String {
    let mut text = format!(
        "[gateway]\nbudget_ms = {}\nreplay_window_secs = {}\nmax_body_bytes = {}\ndeferred_limit_ms = {}\n",
        settings.budget_ms,
        settings.replay_window_secs,
        settings.max_body_bytes,
        settings.deferred_limit_ms
    );
    for app in apps {
        text.push_str("\n[[apps]]\n");
        let mut line = |key: &str, value: String| text.push_str(&format!("{key} = {value}\n"));
        line("name", quoted(&app.name));
        line("platform", quoted(app.platform));
        let optional = [
            ("corp_id", &app.corp_id),
            ("app_id", &app.app_id),
            ("encoding_aes_key", &app.key),
            ("previous_encoding_aes_key", &app.previous_key),
            ("secret", &app.secret),
        ];
        line("token", quoted(&app.token));
        for (key, value) in optional {
            if let Some(value) = value {
                line(key, quoted(value));
            }
        }
        if let Some(agent_id) = app.agent_id {
            line("agent_id", agent_id.to_string());
        }
        if app.plaintext_late_replies {
            line("plaintext_late_replies", "true".into());
        }
        if let Some(key) = app.unknown {
            line(key, "true".into());
        }
        text.push_str("[apps.reply]\necho = true\n");
    }
    text
}

/// Settings inside their documented ranges. A replay window of a second or two could
/// refuse a request signed a moment before: 0 (off) or at least a minute.
fn settings() -> impl Strategy<Value = Settings> {
    (
        1..=4800u64,
        prop_oneof![Just(0u64), 60..=86_400u64],
        1024..=(1u64 << 20),
        1000..=600_000u64,
    )
        .prop_map(
            |(budget_ms, replay_window_secs, max_body_bytes, deferred_limit_ms)| Settings {
                budget_ms,
                replay_window_secs,
                max_body_bytes,
                deferred_limit_ms,
            },
        )
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/]{43}"
}

/// A well-formed app of any mode. Names are made unique by the caller.
fn app() -> impl Strategy<Value = (Mode, App)> {
    let mode = prop_oneof![
        Just(Mode::Wecom),
        Just(Mode::MpPlaintext),
        Just(Mode::MpSafe),
        Just(Mode::Open),
    ];
    // Any printable ASCII but space (which the platforms do not allow); `env:` would make
    // it a reference to a variable.
    let token = "[!-~]{1,128}".prop_filter("not an env: reference", |t| !t.starts_with("env:"));
    (
        mode,
        "[A-Za-z0-9_-]{1,60}",
        token,
        "[A-Za-z0-9]{1,32}",
        key(),
        prop::option::of(key()),
        prop::option::of(0..=TOML_INT_MAX),
        prop::option::of("[A-Za-z0-9]{1,40}"),
        any::<bool>(),
    )
        .prop_map(
            |(mode, name, token, id, key, previous_key, agent_id, secret, flag)| {
                let encrypted = mode != Mode::MpPlaintext;
                let app = App {
                    name,
                    platform: match mode {
                        Mode::Wecom => "wecom",
                        Mode::MpPlaintext | Mode::MpSafe => "mp",
                        Mode::Open => "open",
                    },
                    corp_id: (mode == Mode::Wecom).then(|| id.clone()),
                    // A plaintext account needs its AppID only to call APIs (the secret).
                    app_id: match mode {
                        Mode::Wecom => None,
                        Mode::MpPlaintext => (flag || secret.is_some()).then_some(id),
                        Mode::MpSafe | Mode::Open => Some(id),
                    },
                    agent_id: agent_id.filter(|_| mode == Mode::Wecom),
                    token,
                    key: encrypted.then_some(key),
                    previous_key: previous_key.filter(|_| encrypted),
                    secret,
                    plaintext_late_replies: mode == Mode::MpPlaintext && flag,
                    unknown: None,
                };
                (mode, app)
            },
        )
}

/// One to four well-formed apps with unique names.
fn apps() -> impl Strategy<Value = Vec<(Mode, App)>> {
    prop::collection::vec(app(), 1..=4).prop_map(|mut apps| {
        for (i, (_, app)) in apps.iter_mut().enumerate() {
            app.name.push_str(&i.to_string());
        }
        apps
    })
}

/// One mistake an operator makes, and what the refusal must say.
#[derive(Debug, Clone)]
enum Mistake {
    /// A name that is not a URL path segment.
    Name(String),
    /// The first app's name again.
    DuplicateName,
    /// No corp id (WeCom) or AppID (encrypted MP, Open).
    NoReceiveId,
    /// The other platform's id field.
    WrongIdField,
    /// An encrypted app without its key.
    NoKey,
    /// `agent_id` on an MP or Open app.
    AgentIdElsewhere,
    /// `plaintext_late_replies` on an encrypted app.
    LateRepliesEncrypted,
    /// `previous_encoding_aes_key` on a plaintext account.
    PreviousKeyAlone,
    /// `secret` on a plaintext account without an AppID.
    SecretWithoutAppId,
    /// A key wxgate does not know.
    UnknownKey(&'static str),
    Budget(u64),
    DeferredLimit(u64),
    MaxBody(u64),
    NoApps,
}

fn mistake() -> impl Strategy<Value = Mistake> {
    prop_oneof![
        prop_oneof![
            Just(String::new()),
            "[a-z]{65,80}",
            "[a-z]{0,5}[/ .é$%?#:\"\\\\][a-z]{0,5}",
        ]
        .prop_map(Mistake::Name),
        Just(Mistake::DuplicateName),
        Just(Mistake::NoReceiveId),
        Just(Mistake::WrongIdField),
        Just(Mistake::NoKey),
        Just(Mistake::AgentIdElsewhere),
        Just(Mistake::LateRepliesEncrypted),
        Just(Mistake::PreviousKeyAlone),
        Just(Mistake::SecretWithoutAppId),
        prop_oneof![Just("tokne"), Just("agentid"), Just("reply_echo")]
            .prop_map(Mistake::UnknownKey),
        prop_oneof![Just(0u64), 4801..=TOML_INT_MAX].prop_map(Mistake::Budget),
        prop_oneof![0..1000u64, 600_001..=TOML_INT_MAX].prop_map(Mistake::DeferredLimit),
        prop_oneof![0..1024u64, ((1u64 << 20) + 1)..=TOML_INT_MAX].prop_map(Mistake::MaxBody),
        Just(Mistake::NoApps),
    ]
}

/// Makes the mistake in app `i` (or the settings), turning the app into one of the mode it
/// applies to where needed. Returns what the refusal must say and whose app it names.
fn make(
    mistake: &Mistake,
    settings: &mut Settings,
    apps: &mut Vec<(Mode, App)>,
    i: usize,
) -> (String, Option<String>) {
    match mistake {
        Mistake::DuplicateName => {
            let copy = apps[0].clone();
            let name = copy.1.name.clone();
            apps.push(copy);
            return ("names must be unique".into(), Some(name));
        }
        Mistake::NoApps => {
            apps.clear();
            return ("configure at least one app".into(), None);
        }
        _ => {}
    }
    let (mode, app) = &mut apps[i];
    let platform = app.platform;
    let named = |app: &App, said: &str| (said.to_owned(), Some(app.name.clone()));
    match mistake {
        Mistake::DuplicateName | Mistake::NoApps => unreachable!("made above"),
        Mistake::Name(name) => {
            app.name = name.clone();
            named(app, "URL path segment")
        }
        Mistake::NoReceiveId => {
            if *mode == Mode::MpPlaintext {
                *mode = Mode::MpSafe;
                app.key = Some(KEY.into());
                app.plaintext_late_replies = false;
            }
            app.corp_id = None;
            app.app_id = None;
            let field = if *mode == Mode::Wecom {
                "corp_id"
            } else {
                "app_id"
            };
            named(app, &format!("{platform} apps need {field}"))
        }
        Mistake::WrongIdField => {
            if *mode == Mode::Wecom {
                app.app_id = app.corp_id.take();
                named(app, "wecom apps take corp_id, not app_id")
            } else {
                app.corp_id = Some("ww0123456789".into());
                named(app, &format!("{platform} apps take app_id, not corp_id"))
            }
        }
        Mistake::NoKey => {
            if matches!(*mode, Mode::MpPlaintext | Mode::MpSafe) {
                // An Official Account without a key is a plaintext one: the mistake is
                // only one for WeCom and Open apps.
                *mode = Mode::Open;
                app.platform = "open";
                app.app_id = Some("wxcomponent0001".into());
                app.plaintext_late_replies = false;
            }
            app.key = None;
            app.previous_key = None;
            let platform = app.platform;
            named(app, &format!("{platform} apps need encoding_aes_key"))
        }
        Mistake::AgentIdElsewhere => {
            if *mode == Mode::Wecom {
                *mode = Mode::Open;
                app.platform = "open";
                app.app_id = app.corp_id.take();
            }
            app.agent_id = Some(1_000_002);
            named(app, "agent_id is a WeCom setting")
        }
        Mistake::LateRepliesEncrypted => {
            if *mode == Mode::MpPlaintext {
                *mode = Mode::MpSafe;
                app.key = Some(KEY.into());
                app.app_id.get_or_insert_with(|| "wx0123456789".into());
            }
            app.plaintext_late_replies = true;
            named(
                app,
                "plaintext_late_replies is for Official Accounts in plaintext mode",
            )
        }
        Mistake::PreviousKeyAlone => {
            if *mode != Mode::MpPlaintext {
                *mode = Mode::MpPlaintext;
                app.platform = "mp";
                app.corp_id = None;
                app.agent_id = None;
                app.key = None;
                app.app_id.get_or_insert_with(|| "wx0123456789".into());
            }
            app.previous_key = Some(KEY.into());
            named(app, "previous_encoding_aes_key needs encoding_aes_key")
        }
        Mistake::SecretWithoutAppId => {
            *mode = Mode::MpPlaintext;
            app.platform = "mp";
            app.corp_id = None;
            app.app_id = None;
            app.agent_id = None;
            app.key = None;
            app.previous_key = None;
            app.secret = Some("s3cret".into());
            named(app, "secret needs app_id")
        }
        Mistake::UnknownKey(key) => {
            app.unknown = Some(key);
            (format!("unknown field `{key}`"), None)
        }
        Mistake::Budget(ms) => {
            settings.budget_ms = *ms;
            ("gateway.budget_ms must be 1..=4800".into(), None)
        }
        Mistake::DeferredLimit(ms) => {
            settings.deferred_limit_ms = *ms;
            (
                "gateway.deferred_limit_ms must be 1000..=600000".into(),
                None,
            )
        }
        Mistake::MaxBody(bytes) => {
            settings.max_body_bytes = *bytes;
            ("gateway.max_body_bytes must be 1024..=1048576".into(), None)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn junk_never_panics_and_never_gets_a_200(
        method in method(), path in path(), query in query(), body in body()
    ) {
        let gateway = Gateway::builder(&Config::parse(&config_text()).unwrap()).build().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let response = runtime.block_on(gateway.handle(CallbackRequest {
            method: &method,
            path: &path,
            query: query.as_deref(),
            body: &body,
        }));
        let status = response.status.as_u16();
        prop_assert!(
            [400, 401, 403, 404, 405, 413].contains(&status),
            "status {} for {} {} ?{:?}", status, method, path, query
        );
        prop_assert!(!response.body.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A config written within the rules is taken as written, and the gateway built from it
    /// serves every app: each echoes a message signed (and, but for a plaintext account,
    /// encrypted) with that app's own token and key.
    #[test]
    fn a_well_formed_config_is_taken_as_written_and_serves_its_apps(
        settings in settings(), apps in apps()
    ) {
        let text = render(&settings, &apps.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>());
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(config.gateway.budget_ms, settings.budget_ms);
        prop_assert_eq!(config.gateway.replay_window_secs, settings.replay_window_secs);
        prop_assert_eq!(config.gateway.max_body_bytes as u64, settings.max_body_bytes);
        prop_assert_eq!(config.gateway.deferred_limit_ms, settings.deferred_limit_ms);
        prop_assert_eq!(config.apps.len(), apps.len());
        for ((mode, written), read) in apps.iter().zip(&config.apps) {
            prop_assert_eq!(&read.name, &written.name);
            prop_assert_eq!(read.platform.as_str(), written.platform);
            prop_assert_eq!(read.route(), format!("/{}/{}", written.platform, written.name));
            let receive_id = if *mode == Mode::Wecom { &written.corp_id } else { &written.app_id };
            prop_assert_eq!(read.receive_id(), receive_id.as_deref());
            prop_assert_eq!(read.agent_id, written.agent_id);
        }

        let gateway = Gateway::builder(&config).build().unwrap_or_else(|e| panic!("{e}\n{text}"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for (i, ((mode, written), app)) in apps.iter().zip(&config.apps).enumerate() {
            let mut sim = PlatformSim::new(app).unwrap();
            let to = match mode {
                Mode::Wecom => app.receive_id().unwrap(),
                _ => "gh_account",
            };
            if *mode == Mode::Open {
                sim = sim.authorizer(Some("wxauthorizer0001".into()));
            }
            let text = format!("hello {}", written.name);
            let message = text_xml(&header(to, "user", sim.agent_id()), &text, 1 + i as u64);
            let request = sim.post(&message, unix_now(), &format!("m{i}")).unwrap();
            let (answer, _) = runtime.block_on(timed_answer(&gateway, &sim, &request));
            prop_assert_eq!(text_of(answer), text);
            if *mode != Mode::Open {
                let verify = sim.verify_url("echo-me", unix_now(), &format!("v{i}")).unwrap();
                let (answer, _) = runtime.block_on(timed_answer(&gateway, &sim, &verify));
                prop_assert_eq!(answer, Answer::Verified("echo-me".into()));
            }
        }
    }

    /// One mistake in an otherwise well-formed config is refused, and the refusal says what
    /// is wrong and, for an app's setting, which app.
    #[test]
    fn a_config_with_one_mistake_is_refused_naming_it(
        mut settings in settings(),
        mut apps in apps(),
        mistake in mistake(),
        which in any::<prop::sample::Index>(),
    ) {
        let i = which.index(apps.len());
        let (said, app) = make(&mistake, &mut settings, &mut apps, i);
        let text = render(&settings, &apps.into_iter().map(|(_, a)| a).collect::<Vec<_>>());
        let e = match Config::parse(&text) {
            Ok(_) => panic!("{mistake:?} was accepted:\n{text}"),
            Err(e) => e.to_string(),
        };
        prop_assert!(e.contains(&said), "{:?}: {}\n{}", mistake, e, text);
        if let Some(app) = app {
            let name = format!("invalid config for app \"{app}\": ");
            prop_assert!(e.starts_with(&name), "{:?}: {}\n{}", mistake, e, text);
        }
    }

    /// A config damaged anywhere (characters inserted, removed or replaced) is a config or
    /// an error, never a panic, and a syntax error names a line of the document.
    #[test]
    fn a_damaged_config_is_an_error_that_says_where_never_a_panic(
        settings in settings(),
        apps in apps(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, damage()), 1..4),
    ) {
        let apps: Vec<App> = apps.into_iter().map(|(_, a)| a).collect();
        let mut text: Vec<char> = render(&settings, &apps).chars().collect();
        for (at, edit, c) in edits {
            let i = at.index(text.len());
            match edit {
                0 => text.insert(i, c),
                1 => {
                    text.remove(i);
                }
                _ => text[i] = c,
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(ConfigError::Syntax(reason)) = Config::parse(&text)
            && let Some(rest) = reason.strip_prefix("line ")
        {
            let line: usize = rest.split(',').next().unwrap().parse().unwrap();
            let lines = text.split('\n').count();
            prop_assert!((1..=lines).contains(&line), "{} of {} lines", reason, lines);
        }
    }
}

/// What damages a TOML document most: its own punctuation, line ends, any character.
fn damage() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '"', '\'', '=', '[', ']', '{', '}', ',', '.', '#', '\\', '\n'
        ]),
        any::<char>(),
    ]
}

/// The case the arbitrary-text property this file had before kept as a failure: a quote, a
/// multibyte character, `=`.
#[test]
fn a_short_odd_text_is_an_error_not_a_panic() {
    assert!(Config::parse("'¡=").is_err());
}
