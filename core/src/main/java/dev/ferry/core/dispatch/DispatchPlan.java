package dev.ferry.core.dispatch;

import dev.ferry.core.dispatch.DispatchReport.HookSpec;
import dev.ferry.core.dispatch.DispatchReport.Reason;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.util.List;
import java.util.Objects;

/**
 * What a dispatch carries out, decided once by the core ({@link Dispatcher#plan}) and read by every backend: the
 * device map resolved against the model (keys never nest) and an ordered list of {@link Unit}s, in tree order.
 * The PyTorch backend turns each unit into one hook; the ONNX backend cuts one partition per unit that carries
 * weights (its input-moving units need nothing: values cross partitions as host tensors anyway).
 * {@link #report()} is the same plan for people, one row per module.
 *
 * @param deviceMap          the device map as resolved against the model (used by every later step)
 * @param keysWithoutModules keys of the map as the user wrote it that name modules the model has no trace of
 *                           (an export drops modules without ops, such as {@code transformer.drop}); accepted,
 *                           placed nowhere, and listed here
 */
public record DispatchPlan(Device mainDevice, DeviceMap deviceMap, List<Unit> units, DispatchReport report,
                           List<String> keysWithoutModules) {

    /**
     * One unit of the plan: the module at {@code path} and what its hook does.
     *
     * @param block     the key of the resolved map it falls under ({@code null} for the root above the blocks)
     * @param offloaded whether its weights are streamed in per forward (storage {@code cpu} / {@code disk} while
     *                  it executes elsewhere) rather than resident
     * @param atomic    whether the preload rule makes it one unit whose subtree is never cut or hooked further
     * @param members   the modules whose tensors this unit places or loads: its whole subtree when it places
     *                  submodules (a resident block, a preload unit), else itself
     * @param reason    why it is a unit (the same reason the report gives)
     * @param apart     subtrees inside this unit's that are units of their own (experts kept apart from a preload
     *                  unit, see {@link PreloadRule}): this unit neither places nor streams their tensors
     * @param routed    a routed expert: fetched when its router selects it, once per forward, never ahead in block
     *                  order
     * @param rowLookup an offloaded {@link dev.ferry.core.module.RowLookup} whose table is tied to nothing: each
     *                  forward streams the rows its ids name, not the table, so it is never fetched ahead either
     */
    public record Unit(String path, String block, Device storage, Device executionDevice, boolean offloaded,
                       boolean atomic, List<String> members, Reason reason, HookSpec hook, List<String> apart,
                       boolean routed, boolean rowLookup) {
        public Unit {
            Objects.requireNonNull(path, "path");
            Objects.requireNonNull(hook, "hook");
            members = List.copyOf(members);
            apart = apart == null ? List.of() : List.copyOf(apart);
        }

        public Unit(String path, String block, Device storage, Device executionDevice, boolean offloaded,
                    boolean atomic, List<String> members, Reason reason, HookSpec hook) {
            this(path, block, storage, executionDevice, offloaded, atomic, members, reason, hook, List.of(), false,
                    false);
        }


        /** Whether this unit places or loads weights (a block, an offload unit), not only moves inputs. */
        public boolean carriesWeights() {
            return hook.offload() || hook.placeSubmodules();
        }
    }

    public DispatchPlan {
        Objects.requireNonNull(mainDevice, "mainDevice");
        Objects.requireNonNull(deviceMap, "deviceMap");
        Objects.requireNonNull(report, "report");
        units = List.copyOf(units);
        keysWithoutModules = keysWithoutModules == null ? List.of() : List.copyOf(keysWithoutModules);
    }

    /** The unit hooking {@code path}, or {@code null}. */
    public Unit unit(String path) {
        for (Unit u : units) {
            if (u.path().equals(path)) {
                return u;
            }
        }
        return null;
    }

    /** Units that place or load weights, in tree order: the blocks a backend carries out. */
    public List<Unit> weightUnits() {
        return units.stream().filter(Unit::carriesWeights).toList();
    }

    /** Whether any unit streams its weights in per forward. */
    public boolean streams() {
        return units.stream().anyMatch(Unit::offloaded);
    }

    /** The routed experts stored away from their execution device, fetched when their router selects them. */
    public List<Unit> routedUnits() {
        return units.stream().filter(Unit::routed).toList();
    }

    /** The same plan with map keys the model has no trace of noted (see {@link #keysWithoutModules}). */
    public DispatchPlan withKeysWithoutModules(List<String> keys) {
        return new DispatchPlan(mainDevice, deviceMap, units, report.withKeysWithoutModules(keys), keys);
    }
}
