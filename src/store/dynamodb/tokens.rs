//! Shared access tokens and their refresh leases on the table.

use super::*;

impl TokenStore for DynamoStore {
    async fn token(&self, key: &str, now_ms: EpochMillis) -> Result<TokenRecord, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(TokenRecord::default());
        };
        let token = match (get_s(&item, "tok"), get_n(&item, "tok_exp")) {
            (Some(value), Some(expires_at_ms)) if expires_at_ms > now_ms => Some(CachedToken {
                value: self.opened(key, "tok", value)?,
                expires_at_ms,
                // Written with every token; a missing one means refresh now.
                refresh_at_ms: get_n(&item, "tok_ref").unwrap_or(0).min(expires_at_ms),
            }),
            _ => None,
        };
        let lease_until_ms = if get_s(&item, "lease_owner").is_some() {
            get_n(&item, "lease_until").unwrap_or(0)
        } else {
            0
        };
        Ok(TokenRecord {
            token,
            lease_until_ms,
        })
    }

    async fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        let request = self
            .update(key)
            .update_expression("SET lease_owner = :o, lease_until = :lu")
            .condition_expression("attribute_not_exists(lease_owner) OR lease_until < :now")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":lu", n(now_ms.saturating_add(lease_ms)))
            .expression_attribute_values(":now", n(now_ms));
        self.made_or_own(key, request, |item| get_s(item, LEASE_OWNER) == Some(owner))
            .await
    }

    async fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> Result<bool, StoreError> {
        // Identifies the token without revealing it (the sealed value differs every write).
        let fingerprint = fingerprint(token.value.as_bytes());
        let request = self
            .update(key)
            .update_expression(
                "SET tok = :t, tok_fp = :fp, tok_exp = :te, tok_ref = :tr REMOVE lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":t", self.sealed(key, "tok", &token.value))
            .expression_attribute_values(":fp", s(&fingerprint))
            .expression_attribute_values(":te", n(token.expires_at_ms))
            .expression_attribute_values(":tr", n(token.refresh_at_ms))
            .expression_attribute_values(":o", s(owner));
        // Stored already by this holder (tokens are unique), the lease given back with it.
        self.made_or_own(key, request, |item| {
            get_s(item, LEASE_OWNER).is_none()
                && get_s(item, "tok_fp") == Some(fingerprint.as_str())
        })
        .await
    }

    async fn release_token_lease(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        condition_held(result)
    }

    async fn drop_token(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression("REMOVE tok, tok_fp, tok_exp, tok_ref")
            // Sealed tokens differ on every write: they are matched by fingerprint (a token
            // stored before sealing, by its plain value).
            .condition_expression("tok_fp = :fp OR tok = :t")
            .expression_attribute_values(":fp", s(&fingerprint(value.as_bytes())))
            .expression_attribute_values(":t", s(value))
            .send()
            .await;
        condition_held(result)
    }
}
