//! Loopback fake of the tiktok_ads API (to be written).
