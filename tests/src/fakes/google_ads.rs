//! Loopback fake of the google_ads API (to be written).
