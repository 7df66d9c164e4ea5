package dev.ferry.cli.batch;

import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * A Spark listener ({@code --conf spark.extraListeners=}this class) that takes 3 s over each failed task attempt, as
 * a busy listener of a user's would: events queued behind it reach later listeners late.
 */
public final class SlowListener extends SparkListener {

    /** Spark's constructor (a public one without arguments). */
    public SlowListener() {
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        if (!end.taskInfo().successful()) {
            try {
                Thread.sleep(3000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
