//! The REST API's request and response bodies, once: the handlers (`http`) answer with them,
//! the command-line client (`cli`) reads them, and the OpenAPI document is derived from them.
//!
//! Where a domain type already is what goes over the wire ([`BotView`], [`CreateBot`],
//! [`BotState`], [`StatsSample`], ...) it is re-exported here rather than copied: the schema is
//! derived on the type itself, so a field added to the domain shows in the API, the client and
//! the document at once. Everything else (lists, acknowledgements, auth bodies) is defined
//! here. Nothing in this module knows HTTP; it depends only on the domain types.

mod audit;
mod auth;
mod bots;
mod error;
mod exec;
mod llm;
mod nodes;
mod notifications;
mod observe;
mod upgrade;

pub use audit::{AuditEntry, AuditPage, AuditQuery, StatsHistory, StatsHistoryQuery, StatsMinute};
pub use auth::{
    CreateToken, LoginRequest, MAX_TOKEN_NAME_LEN, NewToken, Session, TOKEN_NAME_PATTERN,
    TokenList, valid_token_name,
};
pub use bots::{
    BotList, Cleanup, OrphanLists, Orphans, SecretNames, SecretSet, SecretValueBody, Success,
};
pub use error::ErrorBody;
pub use exec::{ClientMessage, ExecRequest, ExecResponse, ServerMessage};
pub use llm::{
    DeleteProviderQuery, KeyRevocation, KeyRotation, ProviderList, ProxyInfo, SinceQuery,
};
pub use nodes::{NodeInfo, NodeList};
pub use notifications::DeliveriesQuery;
pub use observe::{
    Availability, BotStatsHistory, DEFAULT_LOG_TAIL, Health, HealthStatus, LogLines, LogQuery,
    StatsList,
};
pub use upgrade::{UPGRADE_ROLLED_BACK, UpgradeRolledBack};

pub use crate::alerts::{
    AlertEvent, AlertPayload, ChannelKind, ChannelList, ChannelPatch, ChannelView, DeliveryList,
    DeliveryResult, DeliveryView, NewChannel,
};
pub use crate::bots::{
    BotEvent, BotEventKind, BotState, BotView, CreateBot, FieldErrors, HttpProbe, LimitsSpec,
    Observed, PortSpec, UpdateBot, UpgradeBot, UpgradeOutcome, UpgradeResult,
};
pub use crate::docker::{
    Health as BotHealth, LogLine, LogStream, Placement, Protocol, StatsSample,
};
pub use crate::llm::{
    BotUsageReport, Price, PriceTable, ProviderKind, ProviderName, ProviderView, PutProvider,
    UsageReport, UsageRow, UsageTotals,
};
pub use crate::sampler::BotStats;
pub use crate::store::{ApiTokenRow as Token, DesiredState};
