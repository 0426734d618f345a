//! Loopback fake of the everflow API (to be written).
