package dev.ferry.cli;

import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.placement.DeviceMap;

/**
 * What {@code generate} did, whichever backend ran it.
 *
 * @param className  the model's root class
 * @param placement  where the weights went, in words
 * @param report     the core's dispatch report (null when the backend ran a map the core does not plan)
 * @param stopped    why generation stopped
 * @param maxPositions the model's positions (prompt and new tokens together)
 */
record Generation(String className, DeviceMap map, double loadSeconds, String placement, DispatchReport report,
                  long[] promptIds, TimedGeneration timed, String text, StopReason stopped, int maxPositions) {
}
