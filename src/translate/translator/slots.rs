//! Slot vectors with free lists: an entry keeps its id while others come and go, and the
//! ids of removed entries are reused.

/// Puts `value` into a slot that `free` names, or a new one, and returns the slot's id.
pub(super) fn place<T>(slots: &mut Vec<Option<T>>, free: &mut Vec<u32>, value: T) -> u32 {
    if let Some(id) = free.pop()
        && let Some(slot) = slots.get_mut(id as usize)
    {
        *slot = Some(value);
        return id;
    }
    slots.push(Some(value));
    u32::try_from(slots.len() - 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_is_reused_before_the_vector_grows() {
        let mut slots = vec![Some('a'), None, Some('c')];
        let mut free = vec![1];
        assert_eq!(place(&mut slots, &mut free, 'b'), 1);
        assert_eq!(place(&mut slots, &mut free, 'd'), 3);
        assert_eq!(slots, [Some('a'), Some('b'), Some('c'), Some('d')]);
        assert!(free.is_empty());
    }
}
