// callvault's stand-in for ankerl::unordered_dense (not packaged in Debian 12),
// for building the mediasoup worker offline. The worker uses only map, set and
// hash with the std::unordered_map/set interface (find, emplace, erase with
// iterators, at, operator[], iteration), so the standard containers serve;
// their references are even more stable than unordered_dense's.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ankerl::unordered_dense {

template <class T>
struct hash : std::hash<T> {
	using is_avalanching = void;
};

template <class Key, class T, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>,
          class Allocator = std::allocator<std::pair<const Key, T>>>
using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

template <class Key, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>, class Allocator = std::allocator<Key>>
using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;

} // namespace ankerl::unordered_dense
