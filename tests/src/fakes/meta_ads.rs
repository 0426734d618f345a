//! Loopback fake of the meta_ads API (to be written).
