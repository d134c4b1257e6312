global using Procrastinate.Dashboard.Tests.Infrastructure;
global using Procrastinate.Tests.Infrastructure;
global using Xunit;
