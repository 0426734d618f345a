//! Loopback fake of the impact API (to be written).
