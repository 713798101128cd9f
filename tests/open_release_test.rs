//! The Open Platform release test (全网发布): for each of the ten test accounts, the three
//! behaviours WeChat checks, before any report-only shortcut, dedup or bot; and none of
//! them for any other account.

mod support;

use support::calls::handle;
use support::fake_open::FakeOpen;
use support::open_flow::*;
use support::sample::sim_of;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, TEST_ACCOUNTS};
use wxgate::simulate::{self, Answer, Header, PlatformSim};

fn gateway(fake: &FakeOpen) -> (Gateway, PlatformSim) {
    let config = Config::parse(&component_config(
        fake,
        "http://127.0.0.1:9",
        "",
        "echo = true",
    ))
    .unwrap();
    let sim = sim_of(&config, "comp");
    (Gateway::builder(&config).build().unwrap(), sim)
}

/// Gives the gateway its ticket.
async fn with_ticket(gateway: &Gateway, sim: &PlatformSim, fake: &FakeOpen) {
    let push = ticket_push(sim, &fake.issue_ticket(), unix_now());
    assert_eq!(handle(gateway, &push).await, (200, "success".into()));
}

fn location(sim: &PlatformSim, to: &str) -> wxgate::simulate::SignedRequest {
    let header = Header {
        to,
        from: "ozy4qt1eDxSxzCr0aNT0mXCWfrDE",
        create_time: unix_now(),
        agent_id: None,
    };
    sim.post(
        &simulate::location_xml(&header, 23.1, 113.3),
        unix_now(),
        &nonce(),
    )
    .unwrap()
}

fn text_of(answer: Answer) -> Option<String> {
    match answer {
        Answer::Reply(xml) => {
            let start = xml.find("<Content><![CDATA[")? + 18;
            let end = start + xml[start..].find("]]>")?;
            Some(xml[start..end].to_owned())
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_test_account_gets_the_three_answers() {
    let fake = FakeOpen::start();
    let (gateway, sim) = gateway(&fake);
    with_ticket(&gateway, &sim, &fake).await;
    for (n, (app_id, gh)) in TEST_ACCOUNTS.iter().enumerate() {
        let account = sim.clone().authorizer(Some((*app_id).to_owned()));
        // 1. Events, report-only ones included, answered `<Event>from_callback`.
        let request = location(&account, gh);
        let (status, body) = handle(&gateway, &request).await;
        let answer = account.check(&request, status, &body).unwrap();
        assert_eq!(
            text_of(answer).as_deref(),
            Some("LOCATIONfrom_callback"),
            "{app_id}"
        );
        let request = event_to(&account, gh, "ozy4qt1eDxSxzCr0aNT0mXCWfrDE", "subscribe");
        let (status, body) = handle(&gateway, &request).await;
        let answer = account.check(&request, status, &body).unwrap();
        assert_eq!(text_of(answer).as_deref(), Some("subscribefrom_callback"));
        // 2. The text probe.
        let request = text_to(
            &account,
            gh,
            "ozy4qt1eDxSxzCr0aNT0mXCWfrDE",
            "TESTCOMPONENT_MSG_TYPE_TEXT",
            100 + n as u64,
        );
        let (status, body) = handle(&gateway, &request).await;
        let answer = account.check(&request, status, &body).unwrap();
        assert_eq!(
            text_of(answer).as_deref(),
            Some("TESTCOMPONENT_MSG_TYPE_TEXT_callback")
        );
        // 3. The code probe: empty at once, then `$code_from_api` with the code's token.
        let code = fake.authorize(app_id, &[1]);
        let request = text_to(
            &account,
            gh,
            "ozy4qt1eDxSxzCr0aNT0mXCWfrDE",
            &format!("QUERY_AUTH_CODE:{code}"),
            200 + n as u64,
        );
        let (status, body) = handle(&gateway, &request).await;
        assert!(
            matches!(account.check(&request, status, &body), Ok(Answer::Empty)),
            "{body}"
        );
        let sent = fake.sent();
        let last = sent.last().expect("a customer message");
        assert_eq!(sent.len(), n + 1);
        assert_eq!(last.authorizer_appid, *app_id);
        assert_eq!(last.touser, "ozy4qt1eDxSxzCr0aNT0mXCWfrDE");
        assert_eq!(last.content, format!("{code}_from_api"));
    }
    assert_eq!(
        fake.component_token_fetches(),
        1,
        "one component token for all"
    );
}

#[tokio::test]
async fn a_refused_code_falls_back_to_the_stored_token() {
    let fake = FakeOpen::start();
    fake.set_auth_codes_single_use(true);
    let (gateway, sim) = gateway(&fake);
    with_ticket(&gateway, &sim, &fake).await;
    let (app_id, gh) = TEST_ACCOUNTS[0];
    // The account authorized (the event exchanged the code), so its refresh token is stored.
    let code = fake.authorize(app_id, &[1]);
    let event = authorized_push(&sim, "authorized", app_id, &code, unix_now());
    assert_eq!(handle(&gateway, &event).await.1, "success");
    // WeChat probes with the code already used: 61009, then the stored token.
    let account = sim.clone().authorizer(Some(app_id.to_owned()));
    let request = text_to(
        &account,
        gh,
        "ozy4qt1eDxSxzCr0aNT0mXCWfrDE",
        &format!("QUERY_AUTH_CODE:{code}"),
        1,
    );
    let (status, body) = handle(&gateway, &request).await;
    assert!(matches!(
        account.check(&request, status, &body),
        Ok(Answer::Empty)
    ));
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content, format!("{code}_from_api"));
    assert_eq!(
        fake.authorizer_refreshes(app_id),
        1,
        "the stored refresh token was used"
    );
}

#[tokio::test]
async fn other_accounts_get_none_of_it() {
    let fake = FakeOpen::start();
    let (gateway, sim) = gateway(&fake);
    with_ticket(&gateway, &sim, &fake).await;
    let account = sim.clone().authorizer(Some(AUTHORIZER.to_owned()));
    // A LOCATION report stays report-only.
    let request = location(&account, AUTHORIZER_GH);
    let (status, body) = handle(&gateway, &request).await;
    assert!(matches!(
        account.check(&request, status, &body),
        Ok(Answer::Empty)
    ));
    // The probes are ordinary texts (the app echoes).
    for (i, text) in [
        "TESTCOMPONENT_MSG_TYPE_TEXT",
        "QUERY_AUTH_CODE:queryauthcode@@@x",
    ]
    .iter()
    .enumerate()
    {
        let request = text_to(&account, AUTHORIZER_GH, "oUser", text, 10 + i as u64);
        let (status, body) = handle(&gateway, &request).await;
        let answer = account.check(&request, status, &body).unwrap();
        assert_eq!(text_of(answer).as_deref(), Some(*text));
    }
    assert!(fake.sent().is_empty());
    assert_eq!(fake.query_auths(), 0);
}
