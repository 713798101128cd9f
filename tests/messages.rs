//! The inbound model against payloads shaped like the platforms' documentation.

use wxgate::ProtocolError;
use wxgate::message::{Callback, Content, Event, Info, Message, PicSource, ScanMode};

fn msg(xml: &str) -> Message {
    match Callback::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}")) {
        Callback::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn event(xml: &str) -> Event {
    msg(xml).event().cloned().expect("an event")
}

const MP_HEAD: &str = "<ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>1348831860</CreateTime>";

fn mp(body: &str) -> String {
    format!("<xml>{MP_HEAD}{body}</xml>")
}

#[test]
fn mp_text_message() {
    let m = msg(&mp(
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>",
    ));
    assert_eq!(m.to_user_name, "gh_123456789abc");
    assert_eq!(m.from_user_name, "oUser");
    assert_eq!(m.create_time, 1348831860);
    assert_eq!(m.msg_id, Some(1234567890123456));
    assert_eq!(m.agent_id, None);
    assert_eq!(m.text(), Some("this is a test"));
    assert!(m.extra.is_empty());
}

#[test]
fn wecom_text_message_with_agent_id() {
    let m = msg(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 😀 ]]>]]></Content><MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>",
    );
    assert_eq!(m.agent_id, Some(218));
    assert_eq!(m.msg_id, Some(4561255354251345929));
    assert_eq!(m.text(), Some("你好 😀 ]]>"));
}

#[test]
fn media_messages() {
    let image = msg(&mp(
        "<MsgType>image</MsgType><PicUrl>http://p/1.jpg</PicUrl><MediaId>m1</MediaId><MsgId>1</MsgId>",
    ));
    assert_eq!(
        image.content,
        Content::Image {
            pic_url: "http://p/1.jpg".into(),
            media_id: "m1".into()
        }
    );

    let voice = msg(&mp(
        "<MsgType>voice</MsgType><MediaId>m2</MediaId><Format>amr</Format><Recognition>腾讯</Recognition><MsgId>2</MsgId>",
    ));
    assert_eq!(
        voice.content,
        Content::Voice {
            media_id: "m2".into(),
            format: "amr".into(),
            recognition: Some("腾讯".into())
        }
    );
    let voice_plain = msg(&mp(
        "<MsgType>voice</MsgType><MediaId>m2</MediaId><Format>speex</Format><MsgId>2</MsgId>",
    ));
    assert!(matches!(
        voice_plain.content,
        Content::Voice {
            recognition: None,
            ..
        }
    ));

    let video = msg(&mp(
        "<MsgType>video</MsgType><MediaId>v</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>3</MsgId>",
    ));
    assert_eq!(
        video.content,
        Content::Video {
            media_id: "v".into(),
            thumb_media_id: "t".into()
        }
    );
    let short = msg(&mp(
        "<MsgType>shortvideo</MsgType><MediaId>v</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>4</MsgId>",
    ));
    assert_eq!(
        short.content,
        Content::ShortVideo {
            media_id: "v".into(),
            thumb_media_id: "t".into()
        }
    );
    assert_eq!(short.msg_type(), "shortvideo");
}

#[test]
fn location_and_link_messages() {
    let loc = msg(&mp(
        "<MsgType>location</MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>5</MsgId>",
    ));
    assert_eq!(
        loc.content,
        Content::Location {
            location_x: Some(23.134521),
            location_y: Some(113.358803),
            scale: Some(20.0),
            label: "位置信息".into()
        }
    );

    let link = msg(
        "<xml><ToUserName>corp</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>link</MsgType><Title>T</Title><Description>D</Description><Url>http://u</Url><PicUrl>http://p</PicUrl><MsgId>6</MsgId><AgentID>1</AgentID></xml>",
    );
    assert_eq!(
        link.content,
        Content::Link {
            title: "T".into(),
            description: "D".into(),
            url: "http://u".into(),
            pic_url: Some("http://p".into())
        }
    );
}

#[test]
fn mp_subscribe_plain_and_by_qr_code() {
    assert_eq!(
        event(&mp(
            "<MsgType>event</MsgType><Event>subscribe</Event><EventKey><![CDATA[]]></EventKey>"
        )),
        Event::Subscribe {
            event_key: None,
            ticket: None
        }
    );
    assert_eq!(
        event(&mp(
            "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_123123</EventKey><Ticket>TICKET</Ticket>"
        )),
        Event::Subscribe {
            event_key: Some("qrscene_123123".into()),
            ticket: Some("TICKET".into())
        }
    );
    assert_eq!(
        event(&mp("<MsgType>event</MsgType><Event>unsubscribe</Event>")),
        Event::Unsubscribe
    );
    assert_eq!(
        event(&mp(
            "<MsgType>event</MsgType><Event>SCAN</Event><EventKey>123</EventKey><Ticket>T</Ticket>"
        )),
        Event::Scan {
            event_key: "123".into(),
            ticket: Some("T".into())
        }
    );
}

#[test]
fn event_names_match_in_any_case() {
    for name in ["CLICK", "click", "Click"] {
        assert_eq!(
            event(&mp(&format!(
                "<MsgType>event</MsgType><Event>{name}</Event><EventKey>K1</EventKey>"
            ))),
            Event::Click {
                event_key: "K1".into()
            }
        );
    }
    let view = event(&mp(
        "<MsgType>event</MsgType><Event>VIEW</Event><EventKey>http://x</EventKey><MenuId>9</MenuId>",
    ));
    assert_eq!(
        view,
        Event::View {
            event_key: "http://x".into(),
            menu_id: Some("9".into())
        }
    );
    assert_eq!(view.name(), "view");
}

#[test]
fn location_report_event_is_report_only() {
    let e = event(&mp(
        "<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
    ));
    assert_eq!(
        e,
        Event::Location {
            latitude: Some(23.137466),
            longitude: Some(113.352425),
            precision: Some(119.38504)
        }
    );
    assert!(e.is_report_only());
    assert!(
        !Event::Click {
            event_key: "k".into()
        }
        .is_report_only()
    );
}

#[test]
fn menu_events_with_nested_groups() {
    let scan = event(&mp(
        "<MsgType>event</MsgType><Event>scancode_waitmsg</Event><EventKey>6</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>2</ScanResult></ScanCodeInfo>",
    ));
    assert_eq!(
        scan,
        Event::ScanCode {
            mode: ScanMode::WaitMsg,
            event_key: "6".into(),
            scan_type: "qrcode".into(),
            scan_result: "2".into()
        }
    );
    let push = event(&mp(
        "<MsgType>event</MsgType><Event>scancode_push</Event><EventKey>6</EventKey><ScanCodeInfo><ScanType>barcode</ScanType><ScanResult>x</ScanResult></ScanCodeInfo>",
    ));
    assert!(matches!(
        push,
        Event::ScanCode {
            mode: ScanMode::Push,
            ..
        }
    ));

    let pics = event(&mp(
        "<MsgType>event</MsgType><Event>pic_photo_or_album</Event><EventKey>6</EventKey><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>aaa</PicMd5Sum></item><item><PicMd5Sum>bbb</PicMd5Sum></item></PicList></SendPicsInfo>",
    ));
    assert_eq!(
        pics,
        Event::Pics {
            source: PicSource::PhotoOrAlbum,
            event_key: "6".into(),
            count: Some(2),
            pic_md5_sums: vec!["aaa".into(), "bbb".into()]
        }
    );
    for (name, source) in [
        ("pic_sysphoto", PicSource::SysPhoto),
        ("pic_weixin", PicSource::Weixin),
    ] {
        let e = event(&mp(&format!(
            "<MsgType>event</MsgType><Event>{name}</Event><EventKey>k</EventKey><SendPicsInfo><Count>0</Count><PicList></PicList></SendPicsInfo>"
        )));
        assert!(
            matches!(e, Event::Pics { source: s, ref pic_md5_sums, .. } if s == source && pic_md5_sums.is_empty())
        );
        assert_eq!(e.name(), name);
    }

    let sel = event(&mp(
        "<MsgType>event</MsgType><Event>location_select</Event><EventKey>6</EventKey><SendLocationInfo><Location_X>23</Location_X><Location_Y>113</Location_Y><Scale>15</Scale><Label>广州市</Label><Poiname></Poiname></SendLocationInfo>",
    ));
    assert_eq!(
        sel,
        Event::LocationSelect {
            event_key: "6".into(),
            location_x: Some(23.0),
            location_y: Some(113.0),
            scale: Some(15.0),
            label: "广州市".into(),
            poiname: None
        }
    );
}

#[test]
fn job_finish_events() {
    let t = event(&mp(
        "<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID><Status>success</Status>",
    ));
    assert_eq!(
        t,
        Event::TemplateSendJobFinish {
            msg_id: Some(200163836),
            status: "success".into()
        }
    );
    let m = event(&mp(
        "<MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><MsgID>1988</MsgID><Status>sendsuccess</Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount><CopyrightCheckResult><Count>0</Count></CopyrightCheckResult>",
    ));
    assert_eq!(
        m,
        Event::MassSendJobFinish {
            msg_id: Some(1988),
            status: "sendsuccess".into(),
            total_count: Some(100),
            filter_count: Some(80),
            sent_count: Some(75),
            error_count: Some(5)
        }
    );
}

const WECOM_HEAD: &str = "<ToUserName><![CDATA[ww_corp]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1403610513</CreateTime>";

#[test]
fn wecom_events() {
    let enter = msg(&format!(
        "<xml>{WECOM_HEAD}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey><AgentID>1</AgentID></xml>"
    ));
    assert_eq!(
        enter.event(),
        Some(&Event::EnterAgent {
            event_key: String::new()
        })
    );
    assert_eq!(enter.agent_id, Some(1));

    let job = event(&format!(
        "<xml>{WECOM_HEAD}<MsgType>event</MsgType><Event>batch_job_result</Event><BatchJob><JobId>S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4</JobId><JobType>sync_user</JobType><ErrCode>0</ErrCode><ErrMsg>ok</ErrMsg></BatchJob></xml>"
    ));
    assert_eq!(
        job,
        Event::BatchJobResult {
            job_id: "S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4".into(),
            job_type: "sync_user".into(),
            err_code: Some(0),
            err_msg: "ok".into()
        }
    );

    let card = event(&format!(
        "<xml>{WECOM_HEAD}<MsgType>event</MsgType><Event>template_card_event</Event><EventKey>key111</EventKey><TaskId>taskid111</TaskId><CardType>text_notice</CardType><ResponseCode>ResponseCode</ResponseCode><AgentID>1</AgentID></xml>"
    ));
    assert_eq!(
        card,
        Event::TemplateCardEvent {
            event_key: "key111".into(),
            task_id: "taskid111".into(),
            card_type: "text_notice".into(),
            response_code: "ResponseCode".into()
        }
    );
}

#[test]
fn change_contact_keeps_its_variable_fields_as_extras() {
    let m = msg(&format!(
        "<xml>{WECOM_HEAD}<MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_user</ChangeType><UserID>zhangsan</UserID><NewUserID>zhangsan001</NewUserID><Department>1,2,3</Department><ExtAttr><Item><Name>爱好</Name><Type>0</Type><Text><Value>旅游</Value></Text></Item></ExtAttr></xml>"
    ));
    assert_eq!(
        m.event(),
        Some(&Event::ChangeContact {
            change_type: "update_user".into()
        })
    );
    let extra: Vec<(&str, &str)> = m
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        extra,
        vec![
            ("UserID", "zhangsan"),
            ("NewUserID", "zhangsan001"),
            ("Department", "1,2,3"),
            ("ExtAttr.Item.Name", "爱好"),
            ("ExtAttr.Item.Type", "0"),
            ("ExtAttr.Item.Text.Value", "旅游"),
        ]
    );
}

#[test]
fn unknown_types_and_events_parse_generically() {
    let m = msg(&mp(
        "<MsgType>hologram</MsgType><Depth>3</Depth><MsgId>9</MsgId>",
    ));
    assert_eq!(
        m.content,
        Content::Unknown {
            msg_type: "hologram".into()
        }
    );
    assert_eq!(m.extra, vec![("Depth".to_owned(), "3".to_owned())]);

    let m = msg(&mp(
        "<MsgType>event</MsgType><Event>kf_create_session</Event><KfAccount>test1@test</KfAccount>",
    ));
    assert_eq!(
        m.event(),
        Some(&Event::Unknown {
            name: "kf_create_session".into(),
            event_key: None
        })
    );
    assert_eq!(
        m.extra,
        vec![("KfAccount".to_owned(), "test1@test".to_owned())]
    );
}

#[test]
fn unknown_extra_fields_on_known_types_are_kept() {
    let m = msg(&mp(
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId><bizmsgmenuid>101</bizmsgmenuid>",
    ));
    assert_eq!(m.text(), Some("hi"));
    assert_eq!(m.extra, vec![("bizmsgmenuid".to_owned(), "101".to_owned())]);
}

#[test]
fn missing_header_fields_and_bad_numbers_are_40002() {
    let cases = [
        (
            "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
            ProtocolError::XmlMissingField("ToUserName"),
        ),
        (
            "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
            ProtocolError::XmlMissingField("FromUserName"),
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>",
            ProtocolError::XmlMissingField("CreateTime"),
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>x1</CreateTime><MsgType>text</MsgType></xml>",
            ProtocolError::XmlInvalidField {
                field: "CreateTime",
                reason: "expected a number",
            },
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>-1</MsgId></xml>",
            ProtocolError::XmlInvalidField {
                field: "MsgId",
                reason: "expected a number",
            },
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>",
            ProtocolError::XmlMissingField("Event"),
        ),
        (
            "<xml><ToUserName>a</ToUserName></xml>",
            ProtocolError::XmlMissingField("MsgType"),
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>north</Latitude></xml>",
            ProtocolError::XmlInvalidField {
                field: "Latitude",
                reason: "expected a number",
            },
        ),
    ];
    for (xml, expected) in cases {
        let err = Callback::parse(xml).unwrap_err();
        assert_eq!(err, expected, "{xml}");
        assert_eq!(err.code().as_i32(), -40002);
    }
}

#[test]
fn open_platform_info_pushes() {
    let Callback::Info(t) = Callback::parse("<xml><AppId>wx_component</AppId><CreateTime>1413192605</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@xyz</ComponentVerifyTicket></xml>").unwrap() else { panic!() };
    assert_eq!(t.app_id, "wx_component");
    assert_eq!(
        t.info,
        Info::ComponentVerifyTicket {
            ticket: "ticket@@@xyz".into()
        }
    );

    let Callback::Info(a) = Callback::parse("<xml><AppId>c</AppId><CreateTime>1413192760</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wxabc</AuthorizerAppid><AuthorizationCode>code</AuthorizationCode><AuthorizationCodeExpiredTime>1413196360</AuthorizationCodeExpiredTime><PreAuthCode>pre</PreAuthCode></xml>").unwrap() else { panic!() };
    let Info::Authorized(auth) = &a.info else {
        panic!("{a:?}")
    };
    assert_eq!(
        (
            auth.authorizer_appid.as_str(),
            auth.authorization_code.as_str(),
            auth.authorization_code_expired_time
        ),
        ("wxabc", "code", Some(1413196360))
    );
    assert_eq!(a.subject(), Some("wxabc"));

    let Callback::Info(u) = Callback::parse("<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxabc</AuthorizerAppid></xml>").unwrap() else { panic!() };
    assert_eq!(
        u.info,
        Info::Unauthorized {
            authorizer_appid: "wxabc".into()
        }
    );

    let Callback::Info(u) = Callback::parse("<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>updateauthorized</InfoType><AuthorizerAppid>wxabc</AuthorizerAppid><AuthorizationCode>c2</AuthorizationCode></xml>").unwrap() else { panic!() };
    assert!(
        matches!(u.info, Info::UpdateAuthorized(ref a) if a.authorization_code_expired_time.is_none())
    );
}

#[test]
fn wecom_suite_info_pushes_use_suite_id_and_timestamp() {
    let Callback::Info(t) = Callback::parse("<xml><SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket></xml>").unwrap() else { panic!() };
    assert_eq!(
        (t.app_id.as_str(), t.create_time),
        ("ww4asffe99e54c0f4c", 1403610513)
    );
    assert_eq!(
        t.info,
        Info::SuiteTicket {
            ticket: "asdfasfdasdfasdf".into()
        }
    );

    let Callback::Info(c) = Callback::parse("<xml><SuiteId>s</SuiteId><AuthCode>AUTHCODE</AuthCode><InfoType>create_auth</InfoType><TimeStamp>1403610513</TimeStamp><State>123</State></xml>").unwrap() else { panic!() };
    assert_eq!(
        c.info,
        Info::CreateAuth {
            auth_code: "AUTHCODE".into(),
            state: Some("123".into())
        }
    );

    let Callback::Info(x) = Callback::parse("<xml><SuiteId>s</SuiteId><InfoType>reset_permanent_code</InfoType><TimeStamp>1</TimeStamp><AuthCode>A</AuthCode></xml>").unwrap() else { panic!() };
    assert_eq!(
        x.info,
        Info::Unknown {
            info_type: "reset_permanent_code".into()
        }
    );
    assert_eq!(x.extra, vec![("AuthCode".to_owned(), "A".to_owned())]);

    assert_eq!(
        Callback::parse("<xml><InfoType>suite_ticket</InfoType><TimeStamp>1</TimeStamp></xml>")
            .unwrap_err(),
        ProtocolError::XmlMissingField("SuiteId")
    );
}

#[test]
fn dedup_keys_follow_platform_guidance() {
    let a = msg(&mp(
        "<MsgType>text</MsgType><Content>a</Content><MsgId>42</MsgId>",
    ));
    let retry = msg(&mp(
        "<MsgType>text</MsgType><Content>a</Content><MsgId>42</MsgId>",
    ));
    let other = msg(&mp(
        "<MsgType>text</MsgType><Content>a</Content><MsgId>43</MsgId>",
    ));
    assert_eq!(a.dedup_key(), retry.dedup_key());
    assert_ne!(a.dedup_key(), other.dedup_key());
    assert_eq!(a.dedup_key().as_str(), "msg|42");

    // Events: sender + time + event (case-insensitive) + key + agent.
    let e1 = msg(&mp(
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>K</EventKey>",
    ));
    let e1_again = msg(&mp(
        "<MsgType>event</MsgType><Event>click</Event><EventKey>K</EventKey>",
    ));
    let e2 = msg(&mp(
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>OTHER</EventKey>",
    ));
    assert_eq!(e1.dedup_key(), e1_again.dedup_key());
    assert_ne!(e1.dedup_key(), e2.dedup_key());

    // WeCom sends one unsubscribe per app, differing only in AgentID.
    let u1 = msg(&format!(
        "<xml>{WECOM_HEAD}<MsgType>event</MsgType><Event>unsubscribe</Event><AgentID>1</AgentID></xml>"
    ));
    let u2 = msg(&format!(
        "<xml>{WECOM_HEAD}<MsgType>event</MsgType><Event>unsubscribe</Event><AgentID>2</AgentID></xml>"
    ));
    assert_ne!(u1.dedup_key(), u2.dedup_key());

    let t1 = Callback::parse("<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wx1</AuthorizerAppid><AuthorizationCode>x</AuthorizationCode></xml>").unwrap();
    let t2 = Callback::parse("<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wx2</AuthorizerAppid><AuthorizationCode>x</AuthorizationCode></xml>").unwrap();
    assert_ne!(t1.dedup_key(), t2.dedup_key());
}

#[test]
fn model_serialises_to_json_for_upstream_bots() {
    // serde's internally tagged enums can fail at run time; prove every shape serialises.
    let samples = [
        mp("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>"),
        mp("<MsgType>event</MsgType><Event>unsubscribe</Event>"),
        mp("<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>"),
        mp("<MsgType>event</MsgType><Event>weird</Event>"),
        mp("<MsgType>weird</MsgType>"),
        "<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wx1</AuthorizerAppid><AuthorizationCode>x</AuthorizationCode></xml>".to_owned(),
        "<xml><AppId>c</AppId><CreateTime>1</CreateTime><InfoType>other</InfoType></xml>".to_owned(),
    ];
    for xml in samples {
        let cb = Callback::parse(&xml).unwrap();
        let json = serde_json::to_string(&cb).unwrap_or_else(|e| panic!("{e}: {cb:?}"));
        assert!(json.starts_with('{'), "{json}");
    }
    let json = serde_json::to_value(
        Callback::parse(&mp(
            "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>K</EventKey>",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["msg_type"], "event");
    assert_eq!(json["event"], "click");
    assert_eq!(json["event_key"], "K");
    assert_eq!(json["from_user_name"], "oUser");
}
