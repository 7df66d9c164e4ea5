package dev.ferry.core.module;

/**
 * A module whose forward reads only some rows of one table: an embedding ({@code nn.Embedding}, Gemma's scaled word
 * embedding), whose first forward argument holds integer row ids and whose output is those rows (then transformed
 * row by row, if at all). That is what lets an offloaded lookup stream the rows its ids name instead of the whole
 * table (a Llama-3 8B vocabulary is 1 GB in fp16; a decode step reads one 8 KB row of it), and the planner keep
 * untied lookups apart from the dense weights, which stream whole (see
 * {@link dev.ferry.core.placement.DevicePlanner}).
 */
public interface RowLookup {

    /** The local name of the table, a 2-D {@code [rows, dim]} tensor of the module ({@code weight}). */
    default String table() {
        return "weight";
    }

    /**
     * Whether {@code m} can stream by rows: it is a lookup whose table is a 2-D parameter of its own and nothing
     * below it holds tensors. Whether the table is tied to another module (then it is read whole anyway) is for the
     * caller, which knows the model's tied groups.
     */
    static boolean streamsRows(Module m) {
        if (!(m instanceof RowLookup lookup)) {
            return false;
        }
        TensorSlot table = m.ownTensors().get(lookup.table());
        if (table == null || !table.isParameter() || table.spec().rank() != 2) {
            return false;
        }
        return m.children().values().stream().noneMatch(c -> !c.namedTensors().isEmpty());
    }
}
