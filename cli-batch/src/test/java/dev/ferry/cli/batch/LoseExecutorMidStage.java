package dev.ferry.cli.batch;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import org.apache.spark.ExecutorLostFailure;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerApplicationStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;

/**
 * A driver-side Spark listener ({@code --conf spark.extraListeners=}this class) that loses an executor in the middle
 * of a stage, once: when a task of the first stage of {@link Plan#tasks} tasks starts after another task of that
 * stage has succeeded, {@link Plan#loseExecutor} is called with the application and the executor that task just
 * started on. The task is then surely running, and the stage surely has work before and after it. Spark creates the
 * listener itself, so a test hands it the plan through {@link #arm} and reads what happened from the plan.
 */
public final class LoseExecutorMidStage extends SparkListener {

    /** What to lose and when, and what was seen; one per job under test. */
    static final class Plan {
        final int tasks;
        final BiConsumer<String, String> loseExecutor;
        volatile String appId;
        volatile Integer stage;
        volatile String lostExecutor;
        volatile RuntimeException lossFailed;
        final AtomicInteger succeeded = new AtomicInteger();
        /** Counted down when {@link #loseExecutor} has returned (or thrown). */
        final CountDownLatch lost = new CountDownLatch(1);
        /** Executor ids of the task attempts that ended because their executor was lost. */
        final List<String> attemptsLostWithExecutor = new CopyOnWriteArrayList<>();

        /**
         * @param tasks        the number of tasks of the stage to hit (the job's partition count)
         * @param loseExecutor called once with the application id and the executor id
         */
        Plan(int tasks, BiConsumer<String, String> loseExecutor) {
            this.tasks = tasks;
            this.loseExecutor = loseExecutor;
        }
    }

    private static volatile Plan plan;

    /** Sets the plan the next listener Spark creates follows; {@code null} disarms. */
    static void arm(Plan p) {
        plan = p;
    }

    private final Plan p = plan;

    /** Spark's constructor (a public one without arguments). */
    public LoseExecutorMidStage() {
    }

    @Override
    public void onApplicationStart(SparkListenerApplicationStart start) {
        if (p != null && start.appId().isDefined()) {
            p.appId = start.appId().get();
        }
    }

    @Override
    public void onStageSubmitted(SparkListenerStageSubmitted submitted) {
        if (p != null && p.stage == null && submitted.stageInfo().numTasks() == p.tasks) {
            p.stage = submitted.stageInfo().stageId();
        }
    }

    @Override
    public void onTaskStart(SparkListenerTaskStart start) {
        if (p == null || p.lostExecutor != null || p.stage == null || start.stageId() != p.stage
                || p.succeeded.get() == 0) {
            return;
        }
        String executor = start.taskInfo().executorId();
        p.lostExecutor = executor;
        // on a thread of its own: the listeners after this one get their events while the JVMs die
        Thread loss = new Thread(() -> {
            try {
                p.loseExecutor.accept(p.appId, executor);
            } catch (RuntimeException e) {
                p.lossFailed = e;
            } finally {
                p.lost.countDown();
            }
        }, "lose-executor-" + executor);
        loss.setDaemon(true);
        loss.start();
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        if (p == null) {
            return;
        }
        if (end.taskInfo().successful() && p.stage != null && end.stageId() == p.stage) {
            p.succeeded.incrementAndGet();
        }
        if (end.reason() instanceof ExecutorLostFailure) {
            p.attemptsLostWithExecutor.add(end.taskInfo().executorId());
        }
    }
}
