package jp.shomei.app.platform

/**
 * Marks code that calls Android APIs newer than the app's minSdk (28) and is reached only
 * behind a `Build.VERSION.SDK_INT` check.
 *
 * The API-level check (android/compile-check: Animal Sniffer against an API 28 signature)
 * fails on any call above API 28 *except* inside members or classes with this annotation,
 * so every newer call has to be moved here, next to its guard, where a reviewer sees both.
 * Rule for annotated code: each function tests `Build.VERSION.SDK_INT` itself before the
 * newer call (nothing else checks that the guard is there).
 */
@Retention(AnnotationRetention.BINARY)
@Target(AnnotationTarget.CLASS, AnnotationTarget.FUNCTION, AnnotationTarget.CONSTRUCTOR, AnnotationTarget.FIELD)
annotation class SinceApi(val level: Int)
