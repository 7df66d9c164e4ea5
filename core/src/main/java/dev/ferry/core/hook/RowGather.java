package dev.ferry.core.hook;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * What an offloaded lookup ({@link dev.ferry.core.module.RowLookup}) streams instead of its table: the distinct rows
 * its ids name, read from the store in runs of consecutive rows and sent as one compact table {@code [n, dim]},
 * with the ids renumbered into it. The lookup's forward then runs unchanged on the compact table and gives exactly
 * the rows the whole table would have given. A decode step of a 128k-token vocabulary sends one row (8 KiB in
 * fp16 at dim 4096) instead of 1 GiB.
 */
final class RowGather {

    /** The compact table and the renumbered ids, both on the execution device; the caller owns them. */
    record Gathered(Tensor table, Tensor ids, long bytes) {
    }

    private RowGather() {
    }

    /**
     * Gathers the rows of stored tensor {@code name} that {@code ids} (int64 or int32, any shape) name.
     *
     * @param target the dtype the module holds the table in (the store's is converted)
     * @throws IllegalArgumentException naming the table, the id and its position when an id is outside the table
     */
    static Gathered gather(WeightsStore store, String name, DType target, Tensor ids, TensorBackend backend,
                           Device device) {
        TensorSpec stored = store.spec(name);
        if (stored.rank() != 2) {
            throw new IllegalStateException("lookup table '" + name + "' is " + stored
                    + "; a [rows, dim] table was expected");
        }
        long[] values = idValues(ids, name);
        long rows = stored.dim(0);
        long[] distinct = values.clone();
        Arrays.sort(distinct);
        int n = 0;
        for (int i = 0; i < distinct.length; i++) {
            if (i == 0 || distinct[i] != distinct[i - 1]) {
                distinct[n++] = distinct[i];
            }
        }
        distinct = Arrays.copyOf(distinct, n);
        if (n > 0 && (distinct[0] < 0 || distinct[n - 1] >= rows)) {
            long bad = distinct[0] < 0 ? distinct[0] : distinct[n - 1];
            int at = indexOf(values, bad);
            throw new IllegalArgumentException("id " + bad + " at position " + at + " of the input of '" + name
                    + "' is outside its " + rows + " rows (ids must be in [0, " + rows + "))");
        }
        long rowBytes = stored.byteSize() / Math.max(rows, 1);
        long total = rowBytes * n;
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the input of '" + name + "' names " + n + " distinct rows ("
                    + total + " bytes), over the 2 GiB one gather can send; give fewer ids per forward");
        }
        ByteBuffer compact = ByteBuffer.allocateDirect((int) total).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; ) {
            int j = i + 1;
            while (j < n && distinct[j] == distinct[j - 1] + 1 && (j - i + 1) * rowBytes <= Integer.MAX_VALUE) {
                j++;
            }
            compact.put(store.bytes(name, distinct[i] * rowBytes, (int) ((j - i) * rowBytes)).duplicate());
            i = j;
        }
        compact.flip();
        ByteBuffer renumbered = ByteBuffer.allocateDirect(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            renumbered.putLong(Arrays.binarySearch(distinct, v));
        }
        renumbered.flip();
        Tensor table = backend.fromBytes(compact, TensorSpec.of(stored.dtype(), n, stored.dim(1)), device, target);
        try {
            Tensor newIds = backend.fromBytes(renumbered, TensorSpec.of(DType.INT64, ids.spec().shape()), device);
            return new Gathered(table, newIds, total);
        } catch (RuntimeException | Error e) {
            table.close();
            throw e;
        }
    }

    private static long[] idValues(Tensor ids, String name) {
        DType dtype = ids.spec().dtype();
        if (dtype != DType.INT64 && dtype != DType.INT32) {
            throw new IllegalArgumentException("the input of '" + name + "' is " + ids.spec()
                    + "; row ids must be int64 or int32");
        }
        ByteBuffer bytes = ids.toBytes().order(ByteOrder.LITTLE_ENDIAN);
        int count = Math.toIntExact(ids.spec().elementCount());
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            int at = bytes.position();
            out[i] = dtype == DType.INT64 ? bytes.getLong(at + 8 * i) : bytes.getInt(at + 4 * i);
        }
        return out;
    }

    private static int indexOf(long[] values, long v) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] == v) {
                return i;
            }
        }
        return -1;
    }
}
