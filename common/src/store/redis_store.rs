//! The shared store on Redis: one hash of limits and balance, one hash of reservations
//! per guarantee, both under the hash tag `{guarantee:REF}` so every script touches
//! a single slot (Redis Cluster safe). Every decision is one Lua script: atomic across
//! all houses and replicas.

use redis::{AsyncCommands, Script, aio::ConnectionManager};
use secrecy::{ExposeSecret, SecretString};

use super::{
    Balance, DrawOutcome, EarlierDraw, GuaranteeLimits, Refusal, ReleaseOutcome, ReserveOutcome,
    ReserveRequest, StoredDraw, StoredReservation,
};
use crate::{
    error::{Error, Result},
    rulings::RulingRecord,
};

/// Reservation entries are `R:<fen>` while reserved and `X:<fen>` once released.
const LOAD: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'access', ARGV[2], 'amount', ARGV[3],
  'reserved', ARGV[4], 'valid_from', ARGV[5], 'valid_until', ARGV[6], 'suspended', ARGV[7])
redis.call('DEL', KEYS[2])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"#;

const RESERVE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local s = redis.call('HMGET', KEYS[1], 'holder', 'access', 'amount', 'reserved',
  'valid_from', 'valid_until', 'suspended')
local amount, reserved = tonumber(s[3]), tonumber(s[4])
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  local kind, fen = string.sub(existing, 1, 1), string.sub(existing, 3)
  if kind == 'R' then return {'ALREADY_RESERVED', fen, tostring(amount - reserved)} end
  return {'ALREADY_RELEASED', fen}
end
if s[1] ~= ARGV[3] then return {'WRONG_HOLDER'} end
if s[2] ~= ARGV[4] then return {'WRONG_ACCESS_CODE'} end
if s[7] == '1' then return {'SUSPENDED'} end
local today = tonumber(ARGV[5])
if today < tonumber(s[5]) then return {'NOT_YET_VALID'} end
if today > tonumber(s[6]) then return {'EXPIRED'} end
local wanted = tonumber(ARGV[2])
if wanted > amount - reserved then return {'INSUFFICIENT', tostring(amount - reserved)} end
redis.call('HSET', KEYS[1], 'reserved', tostring(reserved + wanted))
redis.call('HSET', KEYS[2], ARGV[1], 'R:' .. ARGV[2])
return {'RESERVED', tostring(amount - reserved - wanted)}
"#;

const RELEASE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if not existing then return {'NOT_RESERVED'} end
local s = redis.call('HMGET', KEYS[1], 'amount', 'reserved')
local amount, reserved = tonumber(s[1]), tonumber(s[2])
local kind, fen = string.sub(existing, 1, 1), string.sub(existing, 3)
if kind == 'X' then return {'ALREADY_RELEASED', fen, tostring(amount - reserved)} end
reserved = reserved - tonumber(fen)
redis.call('HSET', KEYS[1], 'reserved', tostring(reserved))
redis.call('HSET', KEYS[2], ARGV[1], 'X:' .. fen)
return {'RELEASED', fen, tostring(amount - reserved)}
"#;

const CANCEL: &str = r#"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= 'R:' .. ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(ARGV[2]))
return 1
"#;

const SET_SUSPENDED: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'suspended', ARGV[1])
return 1
"#;

/// A ruling: `record` (JSON), `remaining` (licences, thousandths), `revoked`; its draws
/// hash maps declaration numbers to quantities.
const LOAD_RULING: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'revoked', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'remaining', ARGV[3]) end
redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"#;

const UPDATE_RULING: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'revoked', ARGV[2])
return 1
"#;

/// ARGV: declaration, quantity, '1' to replace the declaration's earlier draw (whose
/// quantity then counts as left for it).
const DRAW: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
local existing = redis.call('HGET', KEYS[2], ARGV[1])
local wanted = tonumber(ARGV[2])
if existing and (ARGV[3] ~= '1' or tonumber(existing) == wanted) then
  return {'ALREADY_DRAWN', existing, tostring(remaining)}
end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return {'REVOKED'} end
local available = remaining + tonumber(existing or '0')
if wanted > available then return {'INSUFFICIENT', tostring(available)} end
redis.call('HSET', KEYS[1], 'remaining', tostring(available - wanted))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if existing then return {'REPLACED', existing, tostring(available - wanted)} end
return {'DRAWN', tostring(available - wanted)}
"#;

const CANCEL_DRAW: &str = r#"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(ARGV[2]))
return 1
"#;

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    load: Script,
    reserve: Script,
    release: Script,
    cancel: Script,
    set_suspended: Script,
    load_ruling: Script,
    update_ruling: Script,
    draw: Script,
    cancel_draw: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisStore {
    pub async fn connect(url: &SecretString, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose_secret())?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            load: Script::new(LOAD),
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
            cancel: Script::new(CANCEL),
            set_suspended: Script::new(SET_SUSPENDED),
            load_ruling: Script::new(LOAD_RULING),
            update_ruling: Script::new(UPDATE_RULING),
            draw: Script::new(DRAW),
            cancel_draw: Script::new(CANCEL_DRAW),
        })
    }

    /// The two keys of a guarantee, sharing the hash tag `{guarantee:REF}`.
    fn keys(&self, reference: &str) -> [String; 2] {
        [
            format!("{}:{{guarantee:{reference}}}:state", self.prefix),
            format!("{}:{{guarantee:{reference}}}:reservations", self.prefix),
        ]
    }

    /// The two keys of a ruling, sharing the hash tag `{ruling:ID}`.
    fn ruling_keys(&self, id: &str) -> [String; 2] {
        [
            format!("{}:{{ruling:{id}}}:state", self.prefix),
            format!("{}:{{ruling:{id}}}:draws", self.prefix),
        ]
    }

    pub(super) async fn load_ruling(
        &self,
        ruling: &RulingRecord,
        draws: &[StoredDraw],
    ) -> Result<bool> {
        let [state, entries] = self.ruling_keys(&ruling.id);
        let remaining = ruling
            .quantity_granted_milli
            .map(|granted| {
                (granted - draws.iter().map(|d| d.quantity_milli).sum::<i64>()).to_string()
            })
            .unwrap_or_default();
        let mut invocation = self.load_ruling.key(state);
        invocation
            .key(entries)
            .arg(record_json(ruling)?)
            .arg(if ruling.revoked { "1" } else { "0" })
            .arg(remaining);
        for draw in draws {
            invocation
                .arg(&draw.declaration_number)
                .arg(draw.quantity_milli);
        }
        let loaded: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(loaded == 1)
    }

    pub(super) async fn update_ruling(&self, ruling: &RulingRecord) -> Result<bool> {
        let [state, _] = self.ruling_keys(&ruling.id);
        let updated: i64 = self
            .update_ruling
            .key(state)
            .arg(record_json(ruling)?)
            .arg(if ruling.revoked { "1" } else { "0" })
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(updated == 1)
    }

    pub(super) async fn ruling(&self, id: &str) -> Result<Option<(RulingRecord, Option<i64>)>> {
        let [state, _] = self.ruling_keys(id);
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(state)
            .arg("record")
            .arg("remaining")
            .query_async(&mut self.connection.clone())
            .await?;
        let [Some(record), remaining] = values.as_slice() else {
            return Ok(None);
        };
        let record: RulingRecord = serde_json::from_str(record).map_err(|error| {
            Error::internal(anyhow::anyhow!(
                "ruling {id} in the shared store is corrupt: {error}"
            ))
        })?;
        let remaining = remaining.as_deref().map(parse).transpose()?;
        Ok(Some((record, remaining)))
    }

    pub(super) async fn draw_down(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
        earlier: EarlierDraw,
    ) -> Result<DrawOutcome> {
        let [state, entries] = self.ruling_keys(id);
        let reply: Vec<String> = self
            .draw
            .key(state)
            .key(entries)
            .arg(declaration_number)
            .arg(quantity_milli)
            .arg(if earlier == EarlierDraw::Replace {
                "1"
            } else {
                "0"
            })
            .invoke_async(&mut self.connection.clone())
            .await?;
        let number = |i: usize| parse_fen(&reply, i);
        Ok(match reply.first().map(String::as_str) {
            Some("DRAWN") => DrawOutcome::Drawn {
                remaining_milli: number(1)?,
            },
            Some("REPLACED") => DrawOutcome::Replaced {
                earlier_milli: number(1)?,
                remaining_milli: number(2)?,
            },
            Some("ALREADY_DRAWN") => DrawOutcome::AlreadyDrawn {
                quantity_milli: number(1)?,
                remaining_milli: number(2)?,
            },
            Some("INSUFFICIENT") => DrawOutcome::Insufficient {
                remaining_milli: number(1)?,
            },
            Some("REVOKED") => DrawOutcome::Revoked,
            Some("NOT_LOADED") => DrawOutcome::NotLoaded,
            _ => return Err(unexpected(&reply)),
        })
    }

    pub(super) async fn cancel_draw(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
    ) -> Result<bool> {
        let [state, entries] = self.ruling_keys(id);
        let cancelled: i64 = self
            .cancel_draw
            .key(state)
            .key(entries)
            .arg(declaration_number)
            .arg(quantity_milli)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(cancelled == 1)
    }

    pub(super) async fn forget_ruling(&self, id: &str) -> Result<()> {
        let keys = self.ruling_keys(id);
        let _: i64 = self.connection.clone().del(&keys[..]).await?;
        Ok(())
    }

    pub(super) async fn load_guarantee(
        &self,
        limits: &GuaranteeLimits,
        reservations: &[StoredReservation],
    ) -> Result<bool> {
        let reserved: i64 = reservations
            .iter()
            .filter(|r| !r.released)
            .map(|r| r.amount_fen)
            .sum();
        let [state, entries] = self.keys(&limits.reference);
        let mut invocation = self.load.key(state);
        invocation
            .key(entries)
            .arg(&limits.holder)
            .arg(&limits.access_code_hash)
            .arg(limits.amount_fen)
            .arg(reserved)
            .arg(limits.valid_from)
            .arg(limits.valid_until)
            .arg(if limits.suspended { "1" } else { "0" });
        for reservation in reservations {
            let kind = if reservation.released { 'X' } else { 'R' };
            invocation
                .arg(&reservation.declaration_number)
                .arg(format!("{kind}:{}", reservation.amount_fen));
        }
        let loaded: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(loaded == 1)
    }

    pub(super) async fn forget_guarantee(&self, reference: &str) -> Result<()> {
        let keys = self.keys(reference);
        let _: i64 = self.connection.clone().del(&keys[..]).await?;
        Ok(())
    }

    pub(super) async fn reserve(&self, request: &ReserveRequest<'_>) -> Result<ReserveOutcome> {
        let [state, entries] = self.keys(request.reference);
        let reply: Vec<String> = self
            .reserve
            .key(state)
            .key(entries)
            .arg(request.declaration_number)
            .arg(request.amount_fen)
            .arg(request.holder)
            .arg(request.access_code_hash)
            .arg(request.today)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let number = |i: usize| parse_fen(&reply, i);
        Ok(match reply.first().map(String::as_str) {
            Some("RESERVED") => ReserveOutcome::Reserved {
                available_fen: number(1)?,
            },
            Some("ALREADY_RESERVED") => ReserveOutcome::AlreadyReserved {
                amount_fen: number(1)?,
                available_fen: number(2)?,
            },
            Some("ALREADY_RELEASED") => ReserveOutcome::AlreadyReleased {
                amount_fen: number(1)?,
            },
            Some("NOT_LOADED") => ReserveOutcome::NotLoaded,
            Some("WRONG_HOLDER") => ReserveOutcome::Refused(Refusal::WrongHolder),
            Some("WRONG_ACCESS_CODE") => ReserveOutcome::Refused(Refusal::WrongAccessCode),
            Some("SUSPENDED") => ReserveOutcome::Refused(Refusal::Suspended),
            Some("NOT_YET_VALID") => ReserveOutcome::Refused(Refusal::NotYetValid),
            Some("EXPIRED") => ReserveOutcome::Refused(Refusal::Expired),
            Some("INSUFFICIENT") => ReserveOutcome::Refused(Refusal::InsufficientHeadroom {
                available_fen: number(1)?,
            }),
            _ => return Err(unexpected(&reply)),
        })
    }

    pub(super) async fn release(
        &self,
        reference: &str,
        declaration_number: &str,
    ) -> Result<ReleaseOutcome> {
        let [state, entries] = self.keys(reference);
        let reply: Vec<String> = self
            .release
            .key(state)
            .key(entries)
            .arg(declaration_number)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let number = |i: usize| parse_fen(&reply, i);
        Ok(match reply.first().map(String::as_str) {
            Some("RELEASED") => ReleaseOutcome::Released {
                amount_fen: number(1)?,
                available_fen: number(2)?,
            },
            Some("ALREADY_RELEASED") => ReleaseOutcome::AlreadyReleased {
                amount_fen: number(1)?,
                available_fen: number(2)?,
            },
            Some("NOT_RESERVED") => ReleaseOutcome::NotReserved,
            Some("NOT_LOADED") => ReleaseOutcome::NotLoaded,
            _ => return Err(unexpected(&reply)),
        })
    }

    pub(super) async fn cancel_reservation(
        &self,
        reference: &str,
        declaration_number: &str,
        amount_fen: i64,
    ) -> Result<bool> {
        let [state, entries] = self.keys(reference);
        let cancelled: i64 = self
            .cancel
            .key(state)
            .key(entries)
            .arg(declaration_number)
            .arg(amount_fen)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(cancelled == 1)
    }

    pub(super) async fn set_suspended(&self, reference: &str, suspended: bool) -> Result<bool> {
        let [state, _] = self.keys(reference);
        let done: i64 = self
            .set_suspended
            .key(state)
            .arg(if suspended { "1" } else { "0" })
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(done == 1)
    }

    pub(super) async fn balance(&self, reference: &str) -> Result<Option<Balance>> {
        let [state, _] = self.keys(reference);
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(state)
            .arg("amount")
            .arg("reserved")
            .arg("suspended")
            .query_async(&mut self.connection.clone())
            .await?;
        let [Some(amount), Some(reserved), suspended] = values.as_slice() else {
            return Ok(None);
        };
        Ok(Some(Balance {
            amount_fen: parse(amount)?,
            reserved_fen: parse(reserved)?,
            suspended: suspended.as_deref() == Some("1"),
        }))
    }
}

fn record_json(ruling: &RulingRecord) -> Result<String> {
    serde_json::to_string(ruling).map_err(|error| {
        Error::internal(anyhow::anyhow!("serialising ruling {}: {error}", ruling.id))
    })
}

fn parse(value: &str) -> Result<i64> {
    value.parse().map_err(|_| {
        Error::internal(anyhow::anyhow!(
            "shared store holds a non-integer amount {value:?}"
        ))
    })
}

fn parse_fen(reply: &[String], index: usize) -> Result<i64> {
    reply
        .get(index)
        .ok_or_else(|| unexpected(reply))
        .and_then(|value| parse(value))
}

fn unexpected(reply: &[String]) -> Error {
    Error::internal(anyhow::anyhow!("unexpected shared store reply {reply:?}"))
}
