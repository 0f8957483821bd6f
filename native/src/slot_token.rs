//! The epoll user data of a watched eventfd: `generation << 32 | slot index`. A slot's
//! generation changes when it is freed, so a stale token can never reach a recycled slot.
//! Two values are reserved for the worker's own eventfds.

/// Token of the control eventfd.
pub(crate) const TOKEN_CONTROL: u64 = u64::MAX;
/// Token of the canary eventfd.
pub(crate) const TOKEN_CANARY: u64 = u64::MAX - 1;
/// Slot indexes stay below this so tokens never collide with the reserved ones.
pub(crate) const MAX_SLOTS: usize = 0xFFFF_0000;

/// The token of slot `index` in its `generation`.
#[inline]
pub(crate) fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

/// The slot index of a token.
#[inline]
pub(crate) fn index(token: u64) -> usize {
    // The low 32 bits: fits a usize on x86_64.
    (token & 0xFFFF_FFFF) as usize
}

/// The generation of a token.
#[inline]
pub(crate) fn generation(token: u64) -> u32 {
    (token >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reserved_values() {
        let t = token(7, 3);
        assert_eq!((index(t), generation(t)), (7, 3));
        assert!(index(TOKEN_CONTROL) >= MAX_SLOTS && index(TOKEN_CANARY) >= MAX_SLOTS);
    }
}
