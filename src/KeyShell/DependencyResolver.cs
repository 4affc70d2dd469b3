using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace KeyShell;

/// <summary>
/// Keeps KeyShell's dependencies (its engine, Microsoft.Extensions.Logging) from clashing with other
/// modules'. On PowerShell 7 they load into a private AssemblyLoadContext from Dependencies/Core; only
/// KeyShell.Engine is reached from the default context, and everything it needs resolves inside ours.
/// On Windows PowerShell 5.1 there are no load contexts: Dependencies/Desktop is searched when the
/// runtime cannot find an assembly, so a different version loaded first by another module wins there.
/// </summary>
internal static class DependencyResolver
{
    internal const string EngineAssembly = "KeyShell.Engine";

    internal static void Install()
    {
        var root = Path.GetDirectoryName(typeof(DependencyResolver).Assembly.Location) ?? string.Empty;
        if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal))
        {
            var desktop = Path.Combine(root, "Dependencies", "Desktop");
            AppDomain.CurrentDomain.AssemblyResolve += (_, args) => LoadDesktop(desktop, new AssemblyName(args.Name));
        }
        else
        {
            RegisterCore(Path.Combine(root, "Dependencies", "Core"));
        }
    }

    // Separate methods so the .NET Core-only types are compiled only on .NET Core.
    private static void RegisterCore(string directory)
    {
        var context = new DependencyLoadContext(directory);
        AssemblyLoadContext.Default.Resolving += (_, name) =>
            name.Name == EngineAssembly ? context.LoadFromAssemblyName(name) : null;
    }

    private static Assembly? LoadDesktop(string directory, AssemblyName name)
    {
        var path = Path.Combine(directory, name.Name + ".dll");
        return File.Exists(path) ? Assembly.LoadFrom(path) : null;
    }

    private sealed class DependencyLoadContext : AssemblyLoadContext
    {
        private readonly string _directory;

        public DependencyLoadContext(string directory) => _directory = directory;

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // Ours first; anything not shipped in Dependencies (the framework) comes from the default context.
            var path = Path.Combine(_directory, assemblyName.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}
