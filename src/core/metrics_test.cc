#include "core/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>

namespace machub::core {
namespace {

TEST(Histogram, BucketsAreInclusiveAndCumulative) {
  Histogram h({0.1, 0.5, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // on the bound: counts in le="0.1"
  h.Observe(0.3);
  h.Observe(1);
  h.Observe(7);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(h.Count(), 5);
  EXPECT_DOUBLE_EQ(h.Sum(), 8.45);
}

TEST(Histogram, BoundsSortedAndCleaned) {
  Histogram h({1, 0.5, 1, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h.bounds(), (std::vector<double>{0.5, 1}));
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<int64_t>{0, 0, 1}));
  EXPECT_DOUBLE_EQ(h.Sum(), 0);
}

TEST(LatencyBuckets, Values) {
  EXPECT_EQ(LatencyBuckets(),
            (std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1, 0.25, 0.5, 1, 2.5, 5, 10}));
}

TEST(MetricsRegistry, SameNameAndLabelsSameMetric) {
  MetricsRegistry r;
  Counter& a = r.GetCounter("x_total", "X.", {{"k", "v"}});
  Counter& b = r.GetCounter("x_total", "ignored", {{"k", "v"}});
  Counter& c = r.GetCounter("x_total", "X.", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  a.Inc();
  b.Inc(2);
  EXPECT_EQ(a.Value(), 3);
  EXPECT_EQ(c.Value(), 0);
}

TEST(MetricsRegistry, RendersExpositionFormat) {
  MetricsRegistry r;
  r.GetCounter("machub_http_requests_total", "HTTP requests.",
               {{"route", "/v1/sales"}, {"status", "201"}})
      .Inc(3);
  r.GetCounter("machub_http_requests_total", "HTTP requests.",
               {{"route", "/v1/sales"}, {"status", "400"}})
      .Inc();
  r.GetGauge("machub_backlog_sales", "Sales not yet uploaded.").Set(42);
  Histogram& h = r.GetHistogram("machub_fsync_seconds", "Fsync latency.", {0.001, 0.00025, 0.5});
  h.Observe(0.0002);
  h.Observe(0.002);
  EXPECT_EQ(r.RenderText(),
            "# HELP machub_backlog_sales Sales not yet uploaded.\n"
            "# TYPE machub_backlog_sales gauge\n"
            "machub_backlog_sales 42\n"
            "# HELP machub_fsync_seconds Fsync latency.\n"
            "# TYPE machub_fsync_seconds histogram\n"
            "machub_fsync_seconds_bucket{le=\"0.00025\"} 1\n"
            "machub_fsync_seconds_bucket{le=\"0.001\"} 1\n"
            "machub_fsync_seconds_bucket{le=\"0.5\"} 2\n"
            "machub_fsync_seconds_bucket{le=\"+Inf\"} 2\n"
            "machub_fsync_seconds_sum 0.0022\n"
            "machub_fsync_seconds_count 2\n"
            "# HELP machub_http_requests_total HTTP requests.\n"
            "# TYPE machub_http_requests_total counter\n"
            "machub_http_requests_total{route=\"/v1/sales\",status=\"201\"} 3\n"
            "machub_http_requests_total{route=\"/v1/sales\",status=\"400\"} 1\n");
}

TEST(MetricsRegistry, HistogramWithLabelsAndEscaping) {
  MetricsRegistry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Help with \\ and\nnewline.", {1, 2.5},
                                {{"route", "a\"b\\c\nd"}});
  h.Observe(2);
  EXPECT_EQ(r.RenderText(),
            "# HELP lat_seconds Help with \\\\ and\\nnewline.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"1\"} 0\n"
            "lat_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"2.5\"} 1\n"
            "lat_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n"
            "lat_seconds_sum{route=\"a\\\"b\\\\c\\nd\"} 2\n"
            "lat_seconds_count{route=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistry, TypeClashIsNotRendered) {
  MetricsRegistry r;
  r.GetCounter("m", "A counter.").Inc();
  Gauge& g = r.GetGauge("m", "Now a gauge?");
  g.Set(5);  // usable, but one name has one type in the output
  EXPECT_EQ(g.Value(), 5);
  EXPECT_EQ(r.RenderText(), "# HELP m A counter.\n# TYPE m counter\nm 1\n");
}

TEST(MetricsRegistry, ConcurrentUpdates) {
  MetricsRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < 10000; ++i) {
        r.GetCounter("c_total", "C.").Inc();
        r.GetHistogram("h_seconds", "H.", LatencyBuckets()).Observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.GetCounter("c_total", "C.").Value(), 40000);
  EXPECT_EQ(r.GetHistogram("h_seconds", "H.", LatencyBuckets()).Count(), 40000);
  EXPECT_NE(r.RenderText().find("h_seconds_bucket{le=\"0.001\"} 40000\n"), std::string::npos);
}

}  // namespace
}  // namespace machub::core
