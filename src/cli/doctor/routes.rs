//! Check 2: the URLs the console must be given for an app.

use super::report::Line;
use crate::config::AppConfig;
use crate::platform::Platform;

/// What to paste where, for `app` served at `base` (none: the route alone).
pub(super) fn console_urls(app: &AppConfig, base: Option<&str>) -> Line {
    let what = format!("{}: console URL", app.name);
    let at = |path: &str| match base {
        Some(base) => format!("{base}{path}"),
        None => format!("{{gateway URL}}{path}"),
    };
    let name = &app.name;
    let detail = match app.platform {
        Platform::Wecom => format!("接收消息 → API接收 URL: {}", at(&app.route())),
        Platform::Mp => format!("服务器配置 → 服务器地址(URL): {}", at(&app.route())),
        Platform::Aibot => format!("智能机器人 → API模式 → URL: {}", at(&app.route())),
        Platform::Open => {
            let page = match &app.public_url {
                Some(url) => format!(
                    "; authorization page {}/open/{name}/authorize (its host on 授权发起页域名)",
                    url.trim_end_matches('/')
                ),
                None => "; no public_url, so no authorization page".to_owned(),
            };
            format!(
                "授权事件接收URL: {}; 消息与事件接收URL: {}{page}",
                at(&format!("/open/{name}")),
                at(&format!("/open/{name}/$APPID$")),
            )
        }
    };
    let detail = if base.is_none() {
        format!("{detail} (pass --url to check it)")
    } else {
        detail
    };
    Line::ok(what, detail)
}
