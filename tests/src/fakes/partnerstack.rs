//! Loopback fake of the partnerstack API (to be written).
