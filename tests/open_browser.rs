//! The Open Platform authorization pages in a real browser: headless Chromium follows the
//! signed link printed by `wxgate open link` through `wxgate serve`, runs the page's script
//! redirect to the fake Open Platform's authorization page (the computer form, or the
//! mobile one for a phone in WeChat), sends the referrer the page's policy allows, follows
//! the fake's 302 back to the gateway and shows the result page. A bad link stops at the
//! error page; what the result page shows is escaped.
//!
//! Needs Chromium (`apt-get install chromium`; `scripts/browser.sh` installs it in CI).
//! Without it the tests say so and pass, unless `CI` is set, where they fail.
//! Everything is on 127.0.0.1.
#![cfg(unix)]
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::cli::{run, wxgate};
use support::fake_open::{FakeOpen, LoginVisit};
use support::open_flow::*;
use support::serve::{Server, TempDir, free_addr};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{AuthType, Gateway};

/// A browser on a computer.
const DESKTOP_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/124.0.0.0 Safari/537.36";
/// WeChat on an iPhone.
const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) \
                         AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 \
                         MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN";
/// How long one browser run may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// One browser at a time: a test machine may have two cores.
static BROWSER: Mutex<()> = Mutex::new(());

/// `chromium` on the `PATH` (Debian's package puts it in /usr/bin).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// The browser, or `None` (after saying why) when the test is to be skipped; in CI its
/// absence is a failure.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(path) = chromium() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none_or(|ci| ci.is_empty()),
        "CI is set but chromium is not installed: scripts/browser.sh installs it \
         (apt-get install chromium)"
    );
    eprintln!(
        "{test}: skipped: /usr/bin/chromium is absent (apt-get install chromium, or run \
         scripts/browser.sh as root)"
    );
    None
}

/// What the browser ended on.
struct Visit {
    /// The final DOM, serialized.
    dom: String,
}

/// Loads `url` in a fresh headless Chromium (its own profile, no network but loopback),
/// follows every redirect, and answers the final DOM. Killed, failing the test, after
/// [`BROWSER_TIMEOUT`].
fn browse(chromium: &Path, url: &str, user_agent: &str) -> Visit {
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let profile = TempDir::new("chromium");
    let started = Instant::now();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--user-agent={user_agent}"))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a hang is ended with all its helper processes.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", chromium.display()));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
        });
        rx
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
            let log = stderr
                .recv_timeout(Duration::from_secs(2))
                .unwrap_or_default();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?} on {url}; it logged:\n{log}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let wait = Duration::from_secs(5);
    let dom = stdout.recv_timeout(wait).unwrap_or_default();
    let log = stderr.recv_timeout(wait).unwrap_or_default();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium failed on {url} ({status}); it logged:\n{log}\nDOM: {dom}"
    );
    eprintln!("chromium: {url} in {took:?}");
    Visit { dom }
}

/// The text of the element with `id` in a serialized DOM (no nested elements).
fn text_of<'d>(dom: &'d str, id: &str) -> Option<&'d str> {
    let pattern = format!("id=\"{id}\">");
    let start = dom.find(&pattern)? + pattern.len();
    let end = start + dom[start..].find('<')?;
    Some(&dom[start..end])
}

/// The `<title>` of a serialized DOM.
fn title_of(dom: &str) -> Option<&str> {
    let start = dom.find("<title>")? + "<title>".len();
    let end = start + dom[start..].find("</title>")?;
    Some(&dom[start..end])
}

/// `wxgate serve` for the component on the fake, with a ticket pushed.
struct Setup {
    fake: FakeOpen,
    server: Server,
    public_url: String,
    config_text: String,
}

impl Setup {
    async fn start() -> Self {
        let fake = FakeOpen::start();
        let addr = free_addr();
        let public_url = format!("http://{addr}");
        let config_text = component_config(&fake, &public_url, "", "echo = true");
        let server = Server::start_logged_on(&config_text, &addr);
        let sim = server.sim("comp");
        let push = ticket_push(&sim, &fake.issue_ticket(), unix_now());
        assert_eq!(server.send(&push).await.1, "success");
        Self {
            fake,
            server,
            public_url,
            config_text,
        }
    }

    /// The link `wxgate open link` prints.
    fn link(&self, extra: &[&str]) -> String {
        let dir = TempDir::new("open-link");
        let path = dir.0.join("wxgate.toml");
        std::fs::write(&path, &self.config_text).unwrap();
        let path = path.to_str().unwrap().to_owned();
        let mut args = vec!["open", "link", "--config", &path, "--app", "comp"];
        args.extend_from_slice(extra);
        let out = run(&mut wxgate(&args));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let link = out.stdout.trim().to_owned();
        assert!(
            link.starts_with(&format!("{}/open/comp/authorize?", self.public_url)),
            "{link}"
        );
        link
    }

    /// A link signed like `wxgate open link`'s, expired a minute ago (the command makes
    /// none that short).
    fn expired_link(&self) -> String {
        let config = Config::parse(&self.config_text).unwrap();
        let gateway = Gateway::builder(&config).build().unwrap();
        gateway
            .authorize_link("comp", AuthType::OfficialAccount, None, unix_now() - 60)
            .unwrap()
    }

    /// The link in the browser, from a desktop or WeChat on a phone; the final DOM.
    async fn browse(&self, chromium: &Path, link: &str, user_agent: &str) -> Visit {
        let (chromium, link, user_agent) =
            (chromium.to_owned(), link.to_owned(), user_agent.to_owned());
        tokio::task::spawn_blocking(move || browse(&chromium, &link, &user_agent))
            .await
            .unwrap()
    }

    /// The one authorization page visit so far, from the gateway's page.
    fn only_visit(&self, page: &str) -> LoginVisit {
        let visits = self.fake.login_visits();
        assert_eq!(visits.len(), 1, "{visits:?}\n{}", self.server.logs());
        let visit = visits[0].clone();
        assert_eq!(visit.page, page, "{visit:?}");
        // WeChat accepts only a visit whose referrer is on the authorization page domain:
        // the page sends its origin.
        assert_eq!(
            visit.referer.as_deref(),
            Some(format!("{}/", self.public_url).as_str()),
            "{visit:?}"
        );
        assert!(
            visit
                .redirect_uri
                .starts_with(&format!("{}/open/comp/authorized?state=", self.public_url)),
            "{visit:?}"
        );
        visit
    }

    /// The DOM is the result page for [`AUTHORIZER`] with permission sets 1 and 15.
    fn assert_result(&self, visit: &Visit) {
        let dom = &visit.dom;
        assert!(
            text_of(dom, "result").is_some(),
            "not the result page: {dom}"
        );
        assert_eq!(text_of(dom, "appid"), Some(AUTHORIZER), "{dom}");
        assert_eq!(text_of(dom, "funcs"), Some("1, 15"), "{dom}");
        assert_eq!(
            title_of(dom),
            Some("授权成功 / Authorization complete"),
            "{dom}"
        );
        assert_eq!(self.fake.query_auths(), 1, "{}", self.server.logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_browser_authorizes_on_the_computer_form() {
    let Some(chromium) = browser_or_skip("a_desktop_browser_authorizes_on_the_computer_form")
    else {
        return;
    };
    let setup = Setup::start().await;
    let link = setup.link(&["--auth-type", "1"]);
    setup.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let visit = setup.browse(&chromium, &link, DESKTOP_UA).await;
    assert_eq!(setup.fake.pre_auth_codes_issued(), 1);
    let login = setup.only_visit("pc");
    assert_eq!(login.auth_type, "1");
    assert_eq!(login.biz_appid, None);
    setup.assert_result(&visit);
    assert_eq!(text_of(&visit.dom, "gh"), Some(AUTHORIZER_GH));
    assert_eq!(
        text_of(&visit.dom, "nick"),
        Some(format!("Fake {AUTHORIZER}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_on_a_phone_authorizes_on_the_mobile_form() {
    let Some(chromium) = browser_or_skip("wechat_on_a_phone_authorizes_on_the_mobile_form") else {
        return;
    };
    let setup = Setup::start().await;
    let link = setup.link(&["--auth-type", "3", "--biz-appid", AUTHORIZER]);
    setup.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let visit = setup.browse(&chromium, &link, WECHAT_UA).await;
    // The mobile URL ends with `#wechat_redirect`: the fragment stays in the browser, the
    // query reaches WeChat whole.
    let login = setup.only_visit("mobile");
    assert_eq!(login.auth_type, "3");
    assert_eq!(login.biz_appid.as_deref(), Some(AUTHORIZER));
    setup.assert_result(&visit);
    assert_eq!(text_of(&visit.dom, "gh"), Some(AUTHORIZER_GH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_in_the_link_forces_the_form() {
    let Some(chromium) = browser_or_skip("mode_in_the_link_forces_the_form") else {
        return;
    };
    let setup = Setup::start().await;
    // `mode` is not signed: it only picks which of WeChat's two forms to open.
    let link = format!("{}&mode=mobile", setup.link(&[]));
    setup.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let visit = setup.browse(&chromium, &link, DESKTOP_UA).await;
    setup.only_visit("mobile");
    setup.assert_result(&visit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_tampered_link_shows_the_error_page() {
    let Some(chromium) = browser_or_skip("an_expired_or_tampered_link_shows_the_error_page") else {
        return;
    };
    let setup = Setup::start().await;
    let good = setup.link(&["--auth-type", "1"]);
    setup.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    for bad in [
        setup.expired_link(),
        good.replace("auth_type=1", "auth_type=3"),
        good.replace("&sig=", "&sig=0"),
    ] {
        let visit = setup.browse(&chromium, &bad, DESKTOP_UA).await;
        let dom = &visit.dom;
        let error = text_of(dom, "error").unwrap_or_else(|| panic!("no error page: {dom}"));
        assert!(error.contains("not valid or has expired"), "{dom}");
        assert!(!dom.contains("id=\"result\""), "{dom}");
    }
    // The browser was answered 403 each time.
    let logs = setup.server.logs();
    let refusals = logs
        .lines()
        .filter(|l| l.contains("authorization page served") && l.contains("status=403"))
        .count();
    assert_eq!(refusals, 3, "{logs}");
    assert_eq!(
        setup.fake.pre_auth_codes_issued(),
        0,
        "no pre-auth code made"
    );
    assert_eq!(setup.fake.pre_auth_code_requests(), 0);
    assert!(setup.fake.login_visits().is_empty());
    assert_eq!(setup.fake.query_auths(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_page_shows_markup_as_text() {
    let Some(chromium) = browser_or_skip("the_result_page_shows_markup_as_text") else {
        return;
    };
    let setup = Setup::start().await;
    let nick = "<script>document.title='pwned'</script>";
    setup.fake.set_account(AUTHORIZER, nick, "gh_x");
    setup.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let visit = setup.browse(&chromium, &setup.link(&[]), DESKTOP_UA).await;
    setup.only_visit("pc");
    setup.assert_result(&visit);
    let dom = &visit.dom;
    // Shown as text (the DOM serializes `<` and `>` of a text node as entities), not run.
    assert_eq!(
        text_of(dom, "nick"),
        Some("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "{dom}"
    );
    assert_eq!(text_of(dom, "gh"), Some("gh_x"));
    assert!(!dom.contains("<script>document.title"), "{dom}");
    assert_ne!(title_of(dom), Some("pwned"));
}
