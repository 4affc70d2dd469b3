using System;
using System.ComponentModel;
using System.Management.Automation;
using System.Runtime.CompilerServices;

namespace KeyShell;

/// <summary>
/// Registers <c>Should -BeValidKeyConversation</c> with a Pester that is imported after KeyShell. PowerShell has
/// no event for a module's import, so KeyShell.psm1 installs this on the runspace's PostCommandLookupAction:
/// the first time a Pester's <c>Should</c> is looked up (before its parameters are bound), the operator is
/// registered with that Pester. A lookup of any other command costs one name comparison; the handler that
/// was there before keeps running after this one. Public only so that KeyShell.psm1 can install it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class PesterAssertionHook
{
    private readonly CommandInvocationIntrinsics _commands;
    private readonly EventHandler<CommandLookupEventArgs>? _previous;
    private readonly EventHandler<CommandLookupEventArgs> _handler;
    private readonly ScriptBlock _register;
    private readonly ConditionalWeakTable<PSModuleInfo, object> _registered = new();
    private bool _removed;

    private PesterAssertionHook(CommandInvocationIntrinsics commands, ScriptBlock register)
    {
        _commands = commands;
        _register = register;
        _previous = commands.PostCommandLookupAction;
        _handler = OnLookup;
    }

    /// <summary>Installs the hook: <paramref name="register"/> is called with each Pester module (PSModuleInfo)
    /// the first time its Should is looked up.</summary>
    public static PesterAssertionHook Install(CommandInvocationIntrinsics commands, ScriptBlock register)
    {
        var hook = new PesterAssertionHook(commands ?? throw new ArgumentNullException(nameof(commands)), register ?? throw new ArgumentNullException(nameof(register)));
        commands.PostCommandLookupAction = hook._handler;
        return hook;
    }

    /// <summary>Marks a Pester as registered already (KeyShell.psm1 registers the Pesters loaded before it).</summary>
    public void Registered(PSModuleInfo pester)
    {
        if (pester is not null && !_registered.TryGetValue(pester, out _))
        {
            _registered.Add(pester, this);
        }
    }

    /// <summary>On Remove-Module: puts the previous handler back, or, if another handler was installed after
    /// this one (and calls it), only stops reacting.</summary>
    public void Remove()
    {
        _removed = true;
        if (_commands.PostCommandLookupAction == _handler)
        {
            _commands.PostCommandLookupAction = _previous;
        }
    }

    private void OnLookup(object sender, CommandLookupEventArgs e)
    {
        if (!_removed && e.Command is { Name: "Should", Module: { Name: "Pester" } pester } && !_registered.TryGetValue(pester, out _))
        {
            _registered.Add(pester, this); // first: a lookup made while registering must not register again
            try
            {
                _register.Invoke(pester);
            }
            catch (RuntimeException)
            {
                // A Pester that takes no more operators (Pester 5 allows 32) runs on without this one;
                // the registration script has said why.
            }
        }

        _previous?.Invoke(sender, e);
    }
}
