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
/// runtime cannot find an assembly, so a different version loaded first by another module wins there; the
/// drawing library is not shipped for it (Export-KeyMeasurement says so for a .png or .svg).
/// </summary>
internal static class DependencyResolver
{
    internal const string EngineAssembly = "KeyShell.Engine";

    internal const string PlotAssembly = "KeyShell.Plot";

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
            name.Name == EngineAssembly || name.Name == PlotAssembly ? context.LoadFromAssemblyName(name) : null;
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

        /// <summary>A native library of ours (libSkiaSharp): from runtimes/&lt;platform&gt;/native, as .NET lays them out.</summary>
        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
        {
            var platform = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "win"
                : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? "osx"
                : "linux";
            var architecture = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            var folder = Path.Combine(_directory, "runtimes", platform == "osx" ? "osx" : platform + "-" + architecture, "native"); // osx: one universal library
            var extension = platform == "win" ? ".dll" : platform == "osx" ? ".dylib" : ".so";
            foreach (var file in new[] { unmanagedDllName, unmanagedDllName + extension, "lib" + unmanagedDllName + extension })
            {
                var path = Path.Combine(folder, file);
                if (File.Exists(path))
                {
                    return LoadUnmanagedDllFromPath(path);
                }
            }

            return IntPtr.Zero; // not ours: the default probing goes on
        }
    }
}
