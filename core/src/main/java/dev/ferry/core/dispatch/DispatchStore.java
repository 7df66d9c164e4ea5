package dev.ferry.core.dispatch;

import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The stores offload hooks read from, seen as one: a name is looked up in each store in turn, and a tied
 * parameter's other names resolve to the name it is stored under (checkpoints store a tied tensor once).
 */
final class DispatchStore implements WeightsStore {

    private final List<WeightsStore> stores;
    private final Map<String, String> aliases = new HashMap<>();

    DispatchStore(List<WeightsStore> stores, List<List<String>> tiedGroups) {
        this.stores = List.copyOf(stores);
        for (List<String> group : tiedGroups) {
            String stored = group.stream().filter(this::containsDirect).findFirst().orElse(null);
            if (stored != null) {
                group.forEach(n -> aliases.put(n, stored));
            }
        }
    }

    private boolean containsDirect(String key) {
        for (WeightsStore s : stores) {
            if (s.contains(key)) {
                return true;
            }
        }
        return false;
    }

    private WeightsStore storeOf(String key) {
        for (WeightsStore s : stores) {
            if (s.contains(key)) {
                return s;
            }
        }
        return null;
    }

    private String resolve(String key) {
        return aliases.getOrDefault(key, key);
    }

    @Override
    public Set<String> keys() {
        Set<String> all = new LinkedHashSet<>();
        stores.forEach(s -> all.addAll(s.keys()));
        aliases.forEach((alias, target) -> {
            if (containsDirect(target)) {
                all.add(alias);
            }
        });
        return all;
    }

    @Override
    public boolean contains(String key) {
        return storeOf(resolve(key)) != null;
    }

    @Override
    public TensorSpec spec(String key) {
        return require(key).spec(resolve(key));
    }

    @Override
    public ByteBuffer bytes(String key) {
        return require(key).bytes(resolve(key));
    }

    @Override
    public ByteBuffer bytes(String key, long offset, int length) {
        return require(key).bytes(resolve(key), offset, length); // a store that reads files reads only the range
    }

    @Override
    public void read(String key, ByteBuffer dst) {
        require(key).read(resolve(key), dst);
    }

    @Override
    public boolean streamsFromFile(String key) {
        return require(key).streamsFromFile(resolve(key));
    }

    private WeightsStore require(String key) {
        WeightsStore s = storeOf(resolve(key));
        if (s == null) {
            throw new IllegalArgumentException("offloaded tensor '" + key + "' is in no weights store");
        }
        return s;
    }
}
