//! Loopback fake of the shopify API (to be written).
