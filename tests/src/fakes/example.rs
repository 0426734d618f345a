//! Loopback fake of the example API (to be written).
