//! Loopback fake of the cake API (to be written).
