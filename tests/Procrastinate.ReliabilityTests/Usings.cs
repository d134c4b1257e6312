global using Xunit;
global using Xunit.Abstractions;

// The scenarios restart PostgreSQL, terminate backends and measure timings: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
