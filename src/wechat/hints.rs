//! What to do about the platform errcodes whose cause is a setting rather than a request:
//! appended to the error's message, so the log line an operator reads names the fix.

/// The fix for `errcode`, when it is one of those. For the caller-IP codes, the platform's
/// errmsg usually names the IP it saw: a proxy's or a NAT gateway's when the calls go
/// through one.
pub(crate) fn hint(errcode: i64) -> Option<&'static str> {
    Some(match errcode {
        61004 => {
            "this caller's IP is not on the component's IP whitelist (白名单IP地址列表): give the function a fixed egress and add its IP (docs/fixed-egress.md)"
        }
        60020 => {
            "this caller's IP is not among the WeCom app's trusted IPs (企业可信IP): give the function a fixed egress and add its IP (docs/fixed-egress.md)"
        }
        40164 => {
            "this caller's IP is not on the Official Account's API IP whitelist: give the function a fixed egress and add its IP (docs/fixed-egress.md)"
        }
        61005 => {
            "the component_verify_ticket has expired: WeChat pushes one every 10 minutes to the authorization event URL (POST /open/{app}); check that URL in the console; a push has been requested"
        }
        61006 => {
            "the component_verify_ticket is not valid: check that the authorization event URL (POST /open/{app}) is the one in the console and the app_id is the component's; a push has been requested"
        }
        61011 => "the component AppID is not valid: check app_id of the open app",
        40013 => {
            "the platform knows no such corp id / AppID: copy corp_id (我的企业 → 企业ID) or app_id (基本配置 → AppID) from the console"
        }
        48002 => {
            "the app has not been granted this API: grant it in the console (WeCom: the app's API permissions or 通讯录同步; Official Account: an unverified account lacks some APIs)"
        }
        // Official Accounts' stable_token answers 40125 too: the text fits both.
        40125 | 41004 => {
            "the AppSecret is wrong or missing: check the app's secret (for an open app, the component AppSecret; reset it in the console if unsure)"
        }
        45009 => {
            "the daily quota of this API is used up: wait for the reset, or clear it in the console"
        }
        61023 => {
            "the authorizer's refresh token is not valid any more: wxgate recovers it from api_get_authorizer_list, else the account must authorize again"
        }
        61003 => "the account has not authorized the component (or withdrew)",
        61007 => {
            "the account did not grant the component this API's permission set: the account must authorize again with it"
        }
        61009 | 61010 => "the authorization code is invalid or expired (it is valid 10 minutes)",
        _ => return None,
    })
}

/// ` — {hint}` for an errcode with a hint, else nothing.
pub(crate) fn suffix(errcode: i64) -> String {
    hint(errcode).map_or_else(String::new, |h| format!(" — {h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_errcodes_name_their_fix_and_others_stay_plain() {
        assert!(hint(61004).unwrap().contains("whitelist"));
        assert!(hint(60020).unwrap().contains("企业可信IP"));
        for code in [
            61005, 61006, 61011, 40125, 41004, 45009, 61023, 40013, 48002,
        ] {
            assert!(hint(code).is_some(), "{code}");
        }
        assert_eq!(hint(40001), None);
        assert_eq!(suffix(0), "");
        let e = super::super::ApiError::Platform {
            errcode: 61004,
            errmsg: "api forbidden for ip".into(),
        };
        assert!(
            e.to_string()
                .starts_with("platform error 61004: api forbidden for ip — ")
        );
    }
}
