//! Open Platform tickets and authorizations on the table. These items have no
//! `expires_at`: a refresh token must outlive every TTL.
//!
//! | kind | `pk` | attributes |
//! |---|---|---|
//! | ticket | `ticket#{component}` | `tkt` (sealed), `tkt_fp`, `tkt_ct` (the push's CreateTime, s) |
//! | authorization | `authz#{component}#{authorizer}` | `aid`, `ast` (authorized, revoked, broken), `rt` (sealed refresh token), `rt_fp`, `funcs` (ids, comma-separated), `evt` (event time, s), `upd` (ms), `nick`, `gh`, `reason` |

use super::*;
use crate::store::open::{AuthorizationRecord, AuthorizationState, Grant, OpenStore, Ticket};
use crate::store::{authorization_key, authorization_prefix, ticket_key};

const STATE: &str = "ast";
const REFRESH: &str = "rt";
const REFRESH_FP: &str = "rt_fp";
const EVENT_TIME: &str = "evt";

impl DynamoStore {
    fn authorization_from_item(
        &self,
        key: &str,
        item: &Item,
    ) -> Result<AuthorizationRecord, StoreError> {
        let state = get_s(item, STATE)
            .and_then(AuthorizationState::parse)
            .ok_or_else(|| corrupt(key, "authorization without a known state"))?;
        let refresh_token = match get_s(item, REFRESH) {
            Some(stored) => Some(self.opened(key, REFRESH, stored)?),
            None => None,
        };
        let func_info = get_s(item, "funcs")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| corrupt(key, "unreadable funcs")))
            .collect::<Result<_, _>>()?;
        Ok(AuthorizationRecord {
            authorizer_app_id: get_s(item, "aid")
                .map(str::to_owned)
                .ok_or_else(|| corrupt(key, "authorization without aid"))?,
            state,
            refresh_token,
            func_info,
            event_time: get_n(item, EVENT_TIME).unwrap_or(0),
            updated_at_ms: get_n(item, "upd").unwrap_or(0),
            nick_name: get_s(item, "nick").map(str::to_owned),
            user_name: get_s(item, "gh").map(str::to_owned),
            reason: get_s(item, "reason").map(str::to_owned),
        })
    }
}

fn funcs(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

impl OpenStore for DynamoStore {
    async fn put_ticket(
        &self,
        component_app_id: &str,
        ticket: &Ticket,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = ticket_key(component_app_id);
        let fp = fingerprint(ticket.value.as_bytes());
        let request = self
            .update(&key)
            .update_expression("SET tkt = :t, tkt_fp = :fp, tkt_ct = :ct, upd = :u")
            .condition_expression("attribute_not_exists(tkt_ct) OR tkt_ct < :ct")
            .expression_attribute_values(":t", self.sealed(&key, "tkt", &ticket.value))
            .expression_attribute_values(":fp", s(&fp))
            .expression_attribute_values(":ct", n(ticket.create_time))
            .expression_attribute_values(":u", n(now_ms));
        self.made_or_own(&key, request, |item| {
            get_n(item, "tkt_ct") == Some(ticket.create_time)
                && get_s(item, "tkt_fp") == Some(fp.as_str())
        })
        .await
    }

    async fn ticket(&self, component_app_id: &str) -> Result<Option<Ticket>, StoreError> {
        let key = ticket_key(component_app_id);
        let Some(item) = self.get(&key).await? else {
            return Ok(None);
        };
        match (get_s(&item, "tkt"), get_n(&item, "tkt_ct")) {
            (Some(stored), Some(create_time)) => Ok(Some(Ticket {
                value: self.opened(&key, "tkt", stored)?,
                create_time,
            })),
            _ => Ok(None),
        }
    }

    async fn authorization(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
    ) -> Result<Option<AuthorizationRecord>, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        match self.get(&key).await? {
            Some(item) => Ok(Some(self.authorization_from_item(&key, &item)?)),
            None => Ok(None),
        }
    }

    async fn grant(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        grant: Grant<'_>,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let fp = fingerprint(grant.refresh_token.as_bytes());
        let request = self
            .update(&key)
            .update_expression(
                "SET aid = :aid, ast = :a, rt = :rt, rt_fp = :fp, funcs = :f, evt = :e, upd = :u REMOVE reason",
            )
            .condition_expression("attribute_not_exists(evt) OR evt <= :e")
            .expression_attribute_values(":aid", s(authorizer_app_id))
            .expression_attribute_values(":a", s(AuthorizationState::Authorized.as_str()))
            .expression_attribute_values(":rt", self.sealed(&key, REFRESH, grant.refresh_token))
            .expression_attribute_values(":fp", s(&fp))
            .expression_attribute_values(":f", s(&funcs(grant.func_info)))
            .expression_attribute_values(":e", n(grant.event_time))
            .expression_attribute_values(":u", n(grant.now_ms));
        self.made_or_own(&key, request, |item| {
            get_s(item, REFRESH_FP) == Some(fp.as_str())
                && get_n(item, EVENT_TIME) == Some(grant.event_time)
                && get_s(item, STATE) == Some(AuthorizationState::Authorized.as_str())
        })
        .await
    }

    async fn revoke(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        event_time: u64,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let revoked = AuthorizationState::Revoked.as_str();
        let request = self
            .update(&key)
            .update_expression(
                "SET aid = :aid, ast = :r, evt = :e, upd = :u REMOVE rt, rt_fp, reason",
            )
            .condition_expression("attribute_not_exists(evt) OR evt <= :e")
            .expression_attribute_values(":aid", s(authorizer_app_id))
            .expression_attribute_values(":r", s(revoked))
            .expression_attribute_values(":e", n(event_time))
            .expression_attribute_values(":u", n(now_ms));
        self.made_or_own(&key, request, |item| {
            get_s(item, STATE) == Some(revoked) && get_n(item, EVENT_TIME) == Some(event_time)
        })
        .await
    }

    async fn replace_refresh_token(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        new: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let new_fp = fingerprint(new.as_bytes());
        let authorized = AuthorizationState::Authorized.as_str();
        let request = self
            .update(&key)
            .update_expression("SET rt = :rt, rt_fp = :new, ast = :a, upd = :u REMOVE reason")
            .condition_expression("rt_fp = :prev AND ast <> :revoked")
            .expression_attribute_values(":rt", self.sealed(&key, REFRESH, new))
            .expression_attribute_values(":new", s(&new_fp))
            .expression_attribute_values(":prev", s(&fingerprint(previous.as_bytes())))
            .expression_attribute_values(":a", s(authorized))
            .expression_attribute_values(":revoked", s(AuthorizationState::Revoked.as_str()))
            .expression_attribute_values(":u", n(now_ms));
        self.made_or_own(&key, request, |item| {
            get_s(item, REFRESH_FP) == Some(new_fp.as_str())
                && get_s(item, STATE) == Some(authorized)
        })
        .await
    }

    async fn mark_broken(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        reason: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let previous_fp = fingerprint(previous.as_bytes());
        let broken = AuthorizationState::Broken.as_str();
        let request = self
            .update(&key)
            .update_expression("SET ast = :b, reason = :why, upd = :u")
            .condition_expression("rt_fp = :prev AND ast <> :revoked")
            .expression_attribute_values(":b", s(broken))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":prev", s(&previous_fp))
            .expression_attribute_values(":revoked", s(AuthorizationState::Revoked.as_str()))
            .expression_attribute_values(":u", n(now_ms));
        self.made_or_own(&key, request, |item| {
            get_s(item, STATE) == Some(broken)
                && get_s(item, REFRESH_FP) == Some(previous_fp.as_str())
        })
        .await
    }

    async fn set_account(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        nick_name: &str,
        user_name: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let request = self
            .update(&key)
            .update_expression("SET nick = :nick, gh = :gh, upd = :u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":nick", s(nick_name))
            .expression_attribute_values(":gh", s(user_name))
            .expression_attribute_values(":u", n(now_ms));
        // Setting the same values again is the same write.
        self.made_or_own(&key, request, |item| {
            get_s(item, "nick") == Some(nick_name) && get_s(item, "gh") == Some(user_name)
        })
        .await
    }

    async fn authorizations(
        &self,
        component_app_id: &str,
    ) -> Result<Vec<AuthorizationRecord>, StoreError> {
        let prefix = authorization_prefix(component_app_id);
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", s(&prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend_error)?;
            for item in page.items.unwrap_or_default() {
                let key = get_s(&item, PK).unwrap_or_default().to_owned();
                records.push(self.authorization_from_item(&key, &item)?);
            }
            match page.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        records.sort_by(|a, b| a.authorizer_app_id.cmp(&b.authorizer_app_id));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::at_rest::AtRestKey;

    /// A store that never sends a request: only its item reading is used.
    fn store() -> DynamoStore {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        DynamoStore::new(Client::from_conf(conf), "t")
    }

    fn item(fields: &[(&str, AttributeValue)]) -> Item {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn permissions_keep_their_order_and_none_is_an_empty_list() {
        assert_eq!(funcs(&[15, 1, 3]), "15,1,3");
        assert_eq!(funcs(&[]), "");
        let key = authorization_key("wxc", "wxa");
        for (stored, read) in [("15,1,3", vec![15, 1, 3]), ("", vec![])] {
            let record = store()
                .authorization_from_item(
                    &key,
                    &item(&[
                        ("aid", s("wxa")),
                        (STATE, s("authorized")),
                        ("funcs", s(stored)),
                    ]),
                )
                .unwrap();
            assert_eq!(record.func_info, read);
        }
    }

    #[test]
    fn an_unreadable_authorization_is_corrupt_not_a_default() {
        let key = authorization_key("wxc", "wxa");
        let good = [("aid", s("wxa")), (STATE, s("revoked")), (EVENT_TIME, n(7))];
        let record = store().authorization_from_item(&key, &item(&good)).unwrap();
        assert_eq!(
            (record.state, record.refresh_token, record.event_time),
            (AuthorizationState::Revoked, None, 7)
        );
        for (name, value) in [
            (STATE, s("gone")),
            ("funcs", s("1,x")),
            // Sealed, and this store has no keys.
            (
                REFRESH,
                s(&AtRestKey::derive(b"material", "component").seal(&key, "x")),
            ),
        ] {
            let mut bad = item(&good);
            bad.insert(name.to_owned(), value);
            assert!(
                matches!(
                    store().authorization_from_item(&key, &bad),
                    Err(StoreError::Corrupt { .. })
                ),
                "{name}"
            );
        }
        let mut no_aid = item(&good);
        no_aid.remove("aid");
        assert!(store().authorization_from_item(&key, &no_aid).is_err());
    }

    #[test]
    fn a_sealed_refresh_token_opens_only_under_its_own_item() {
        let store = store();
        let mut sealing = Sealing::new();
        sealing.add_component("wxc", vec![AtRestKey::derive(b"material", "component")]);
        assert!(store.install_sealing(sealing));
        let key = authorization_key("wxc", "wxa");
        let AttributeValue::S(sealed) = store.sealed(&key, REFRESH, "refreshtoken@@@x") else {
            unreachable!()
        };
        assert!(!sealed.contains("refreshtoken@@@"));
        let stored = item(&[
            ("aid", s("wxa")),
            (STATE, s("authorized")),
            (REFRESH, s(&sealed)),
        ]);
        let record = store.authorization_from_item(&key, &stored).unwrap();
        assert_eq!(record.refresh_token.as_deref(), Some("refreshtoken@@@x"));
        // Copied onto another authorizer's item, it does not open.
        let other = authorization_key("wxc", "wxb");
        assert!(store.authorization_from_item(&other, &stored).is_err());
    }
}
