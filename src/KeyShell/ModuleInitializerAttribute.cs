namespace System.Runtime.CompilerServices;

/// <summary>The compiler emits a module initializer for a method with this attribute; netstandard2.0 lacks the type.</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
internal sealed class ModuleInitializerAttribute : Attribute
{
}
