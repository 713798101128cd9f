//! The Open Platform chain end to end, through `wxgate serve` as a process over HTTP,
//! against the fake Open Platform API: ticket push → component token → authorization page
//! → WeChat's redirect → `authorized` event → a message to `$APPID$` → a slow upstream → one
//! active message with the authorizer's token; the authorizer token's expiry and refresh;
//! a refresh token refused (61023) and recovered from the list; `unauthorized`.

mod support;

use std::time::{Duration, Instant};

use support::cli::{run, wxgate};
use support::fake_open::{COMPONENT_APP_ID, FakeOpen, SentMessage};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::open_flow::*;
use support::serve::{Server, TempDir, free_addr};
use wxgate::clock::unix_now;
use wxgate::simulate::Answer;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, String, Option<String>) {
    let response = no_redirects().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), location)
}

/// Waits up to `limit` for the fake to have delivered `n` messages.
async fn delivered(fake: &FakeOpen, n: usize, limit: Duration) -> Vec<SentMessage> {
    let until = Instant::now() + limit;
    loop {
        let sent = fake.sent();
        if sent.len() >= n || Instant::now() > until {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The authorization link `wxgate open link` prints for `config`.
fn link(config_text: &str, extra: &[&str]) -> String {
    let dir = TempDir::new("open-link");
    let path = dir.0.join("wxgate.toml");
    std::fs::write(&path, config_text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let mut args = vec!["open", "link", "--config", &path, "--app", "comp"];
    args.extend_from_slice(extra);
    let out = run(&mut wxgate(&args));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chain_through_serve() {
    let fake = FakeOpen::start();
    let upstream = FakeUpstream::start(
        FORWARD_SECRET,
        Behavior::text("answered late").after(Duration::from_millis(1500)),
    );
    let addr = free_addr();
    let public_url = format!("http://{addr}");
    let config_text = component_config(
        &fake,
        &public_url,
        "budget_ms = 800",
        &format!(
            "forward = \"{}\"\nforward_secret = \"{FORWARD_SECRET}\"\nforward_timeout_ms = 5000",
            upstream.url()
        ),
    );
    let server = Server::start_logged_on(&config_text, &addr);
    let sim = server.sim("comp");

    // 1. The ticket push is stored and answered `success`.
    let ticket = fake.issue_ticket();
    let push = ticket_push(&sim, &ticket, unix_now());
    let (status, body) = server.send(&push).await;
    assert_eq!((status, body.as_str()), (200, "success"));

    // 2. The authorization page: a signed link, a pre-auth code, the PC and mobile forms.
    let url = link(&config_text, &["--auth-type", "1"]);
    assert!(
        url.starts_with(&format!("{public_url}/open/comp/authorize?")),
        "{url}"
    );
    let (status, page, _) = get(&url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        fake.component_token_fetches(),
        1,
        "one component token, with the ticket"
    );
    assert_eq!(fake.pre_auth_codes_issued(), 1);
    let pc = href_of(&page, "pc").expect("the page links the computer form");
    let mobile = href_of(&page, "mobile").expect("the page links the mobile form");
    assert!(
        pc.starts_with(&format!(
            "{}/cgi-bin/componentloginpage?component_appid={COMPONENT_APP_ID}&pre_auth_code=",
            fake.url()
        )),
        "{pc}"
    );
    assert!(pc.contains("&auth_type=1"), "{pc}");
    assert!(
        mobile.contains("/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&"),
        "{mobile}"
    );
    assert!(mobile.ends_with("#wechat_redirect"), "{mobile}");
    // A tampered or unsigned link burns no pre-auth code.
    for bad in [
        url.replace("auth_type=1", "auth_type=3"),
        url.split("&sig=").next().unwrap().to_owned(),
        format!("{public_url}/open/comp/authorize"),
    ] {
        let (status, page, _) = get(&bad).await;
        assert_eq!(status, 403, "{bad}: {page}");
    }
    assert_eq!(fake.pre_auth_codes_issued(), 1);

    // 3. The administrator confirms; WeChat redirects back with the code.
    fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let (status, _, location) = get(&pc).await;
    assert_eq!(status, 302);
    let back = location.expect("WeChat redirects back");
    assert!(
        back.starts_with(&format!("{public_url}/open/comp/authorized?state=")),
        "{back}"
    );
    let code = back
        .split("auth_code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let (status, result, _) = get(&back).await;
    assert_eq!(status, 200, "{result}");
    assert!(
        result.contains(AUTHORIZER) && result.contains(AUTHORIZER_GH),
        "{result}"
    );
    assert!(result.contains("1, 15"), "{result}");
    assert_eq!(fake.query_auths(), 1);
    // The redirect cannot be replayed with another state.
    let forged = back.replace("state=", "state=1");
    assert_eq!(get(&forged).await.0, 403);
    // With the page's state but no code (the admin cancelled), or a code no platform
    // sends, nothing is exchanged.
    let signed = back.split("&auth_code=").next().unwrap();
    let (status, page, _) = get(signed).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("cancelled"), "{page}");
    let long = format!("{signed}&auth_code={}", "a".repeat(600));
    assert_eq!(get(&long).await.0, 400);
    assert_eq!(fake.query_auths(), 1);

    // 4. The `authorized` event with the same code: exchanged and stored again (newer).
    let event = authorized_push(&sim, "authorized", AUTHORIZER, &code, unix_now());
    assert_eq!(server.send(&event).await, (200, "success".to_owned()));
    assert_eq!(fake.query_auths(), 2);

    // 5. A message to the account; the upstream misses the budget; its reply follows as a
    //    customer message with the authorizer's token.
    let account = sim.clone().authorizer(Some(AUTHORIZER.into()));
    let message = text_to(&account, AUTHORIZER_GH, "oFollower1", "hello", 9001);
    let started = Instant::now();
    let (status, body) = server.send(&message).await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "answered within the budget"
    );
    assert!(
        matches!(account.check(&message, status, &body), Ok(Answer::Empty)),
        "{status} {body}"
    );
    let sent = delivered(&fake, 1, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 1, "one active message: {}", server.logs());
    assert_eq!(
        (
            sent[0].authorizer_appid.as_str(),
            sent[0].touser.as_str(),
            sent[0].content.as_str()
        ),
        (AUTHORIZER, "oFollower1", "answered late")
    );
    assert_eq!(fake.authorizer_refreshes(AUTHORIZER), 1);
    // The platform retries the message: no second bot run, no second message.
    assert_eq!(server.send(&message).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(upstream.requests().len(), 1);

    // 6. The authorizer token expires: refused (40001), refreshed once, sent.
    fake.expire_authorizer_tokens(AUTHORIZER);
    let message = text_to(&account, AUTHORIZER_GH, "oFollower1", "again", 9002);
    assert_eq!(server.send(&message).await.0, 200);
    let sent = delivered(&fake, 2, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 2, "{}", server.logs());
    assert_eq!(fake.authorizer_refreshes(AUTHORIZER), 2);

    // 7. The refresh token stops working (61023): recovered from the list, then sent.
    fake.invalidate_refresh_token_only(AUTHORIZER);
    fake.expire_authorizer_tokens(AUTHORIZER);
    let message = text_to(&account, AUTHORIZER_GH, "oFollower1", "third", 9003);
    assert_eq!(server.send(&message).await.0, 200);
    let sent = delivered(&fake, 3, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 3, "{}", server.logs());
    assert_eq!(fake.authorizer_list_calls(), 1);
    assert!(
        server
            .logs()
            .contains("refresh token recovered from api_get_authorizer_list")
    );

    // 8. The account withdraws: a tombstone, its token dropped; a later reply is not sent.
    fake.revoke(AUTHORIZER);
    let event = unauthorized_push(&sim, AUTHORIZER, unix_now());
    assert_eq!(server.send(&event).await, (200, "success".to_owned()));
    let message = text_to(&account, AUTHORIZER_GH, "oFollower1", "fourth", 9004);
    assert_eq!(server.send(&message).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.sent().len(), 3, "nothing sent for a withdrawn account");
    let logs = server.logs();
    assert!(
        logs.contains("authorization withdrawn; kept as a tombstone"),
        "{logs}"
    );
    assert!(logs.contains("has not authorized component"), "{logs}");

    // Nothing secret reached the log.
    for secret in [
        ticket.as_str(),
        code.as_str(),
        "refreshtoken@@@",
        "authorizer-token-",
        "component-token-",
    ] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
    assert_eq!(
        fake.push_ticket_requests(),
        0,
        "a ticket was there all along"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ticket_asks_for_a_push_once_and_says_what_to_do() {
    let fake = FakeOpen::start();
    let addr = free_addr();
    let config_text = component_config(&fake, &format!("http://{addr}"), "", "echo = true");
    let server = Server::start_logged_on(&config_text, &addr);
    let url = link(&config_text, &[]);
    for _ in 0..3 {
        let (status, page, _) = get(&url).await;
        assert_eq!(status, 502, "{page}");
        assert!(page.contains("component_verify_ticket"), "{page}");
    }
    assert_eq!(
        fake.component_token_fetches(),
        0,
        "no fetch without a ticket"
    );
    assert_eq!(
        fake.push_ticket_requests(),
        1,
        "one push request, throttled"
    );
    // The ticket arrives; the page works.
    let sim = server.sim("comp");
    let push = ticket_push(&sim, &fake.issue_ticket(), unix_now());
    assert_eq!(server.send(&push).await.1, "success");
    assert_eq!(get(&url).await.0, 200);
    // A retried older push does not replace the newer ticket.
    let old = ticket_push(&sim, "ticket@@@stale", unix_now() - 600);
    assert_eq!(server.send(&old).await.1, "success");
    fake.expire_component_tokens();
    assert_eq!(get(&url).await.0, 200, "{}", server.logs());
    assert!(
        server
            .logs()
            .contains("an older component_verify_ticket push")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whitelist_refusal_names_the_fix() {
    let fake = FakeOpen::start();
    fake.set_whitelisted(false);
    let addr = free_addr();
    let config_text = component_config(&fake, &format!("http://{addr}"), "", "echo = true");
    let server = Server::start_logged_on(&config_text, &addr);
    let sim = server.sim("comp");
    let push = ticket_push(&sim, &fake.issue_ticket(), unix_now());
    assert_eq!(server.send(&push).await.1, "success");
    let (status, page, _) = get(&link(&config_text, &[])).await;
    assert_eq!(status, 502);
    assert!(
        page.contains("61004") && page.contains("白名单IP地址列表"),
        "{page}"
    );
    assert!(page.contains("fixed egress"), "{page}");
}
