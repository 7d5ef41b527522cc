/**
 * Scoring, Best-of-n selection and rejection sampling as Apache Spark jobs ({@code rme
 * spark-score}): {@link dev.rewardensemble.spark.SparkScoreJob} (the driver) reads Parquet or JSONL
 * rows, {@link dev.rewardensemble.spark.PartitionScorer} scores each partition as a stream of
 * length-sorted chunks with the executor's one model ({@link
 * dev.rewardensemble.spark.ExecutorModels}), and the output goes through Spark's file committers.
 *
 * <p>Compiled against Spark's jars in Maven's {@code provided} scope: only this package (and the
 * command that calls it) needs them, so the other commands run without Spark on the classpath.
 * Settings travel to the executors as the serializable record {@link
 * dev.rewardensemble.spark.SparkScoreSpec}.
 */
package dev.rewardensemble.spark;
