#!/bin/bash
# A Spark standalone cluster on this machine from Maven's jars (no Spark download): a master and N workers, each its
# own JVM, bound to 127.0.0.1, so that `ferry batch --master spark://127.0.0.1:7077` runs on executors launched by
# workers as on a real cluster.
#   spark/standalone.sh start N     start a master and N workers (1 core, 2g each), print the master URL
#   spark/standalone.sh stop        stop the JVMs this script started (by the pids it recorded)
# Needs `mvn -q -B package -DskipTests` first (cli-batch/target/lib: Spark, Ferry and their dependencies).
# FERRY_SPARK_RUN names the folder for pids, logs and the workers' files (default: spark/target/standalone).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${FERRY_SPARK_RUN:-spark/target/standalone}
PORT=${FERRY_SPARK_PORT:-7077}
# what Spark's launcher passes on Java 17 (the parent POM's spark.java17.opens)
OPENS=(-XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -Djdk.reflect.useDirectMethodHandle=false
  -Dio.netty.tryReflectionSetAccessible=true -Dorg.slf4j.simpleLogger.defaultLogLevel=info)

start() {
  local n=${1:?how many workers}
  [ -d cli-batch/target/lib ] || { echo "no cli-batch/target/lib: run mvn -q -B package -DskipTests first" >&2; exit 2; }
  if [ -f "$RUN/master.pid" ] && kill -0 "$(cat "$RUN/master.pid")" 2>/dev/null; then
    echo "a master started here is running (pid $(cat "$RUN/master.pid")); stop it first" >&2; exit 2
  fi
  rm -rf "$RUN/home" && mkdir -p "$RUN/home/jars" "$RUN/logs" "$RUN/work"
  # SPARK_HOME/jars is where a worker finds the class path of the executors it launches: Maven's jars, linked
  for j in cli-batch/target/lib/*.jar cli-batch/target/ferry-batch.jar; do ln -s "$(readlink -f "$j")" "$RUN/home/jars/"; done
  # SPARK_SCALA_VERSION: the launcher asks for it when no Spark build tree is there
  export SPARK_HOME=$(readlink -f "$RUN/home") SPARK_LOCAL_IP=127.0.0.1 SPARK_SCALA_VERSION=2.13
  local cp="$SPARK_HOME/jars/*"
  java "${OPENS[@]}" -Xmx512m -cp "$cp" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$PORT" \
    --webui-port 0 > "$RUN/logs/master.log" 2>&1 &
  echo $! > "$RUN/master.pid"
  for _ in $(seq 1 120); do grep -q "Starting Spark master at" "$RUN/logs/master.log" && break; sleep 0.5; done
  grep -q "Starting Spark master at" "$RUN/logs/master.log" || { echo "the master did not start: $RUN/logs/master.log" >&2; exit 1; }
  for i in $(seq 1 "$n"); do
    mkdir -p "$RUN/work/$i"
    java "${OPENS[@]}" -Xmx512m -cp "$cp" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores 1 \
      --memory 2g --work-dir "$RUN/work/$i" --webui-port 0 "spark://127.0.0.1:$PORT" > "$RUN/logs/worker-$i.log" 2>&1 &
    echo $! > "$RUN/worker-$i.pid"
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 120); do grep -q "Successfully registered with master" "$RUN/logs/worker-$i.log" && break; sleep 0.5; done
    grep -q "Successfully registered with master" "$RUN/logs/worker-$i.log" || { echo "worker $i did not register: $RUN/logs/worker-$i.log" >&2; exit 1; }
  done
  echo "spark://127.0.0.1:$PORT"
}

stop() {
  shopt -s nullglob
  for f in "$RUN"/worker-*.pid "$RUN"/master.pid; do
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  *) echo "usage: spark/standalone.sh start N | stop" >&2; exit 2 ;;
esac
