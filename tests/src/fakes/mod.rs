//! Loopback fakes of every platform. Each module exposes a seeded data
//! generator (the ground truth) and an axum `Router` serving it the way the
//! real API does; [`server::FakeServer`] runs a router on 127.0.0.1.

pub mod server;

pub mod affiliate;

pub mod cake;
pub mod everflow;
pub mod example;
pub mod google_ads;
pub mod impact;
pub mod meta_ads;
pub mod partnerstack;
pub mod shopify;
pub mod tiktok_ads;
